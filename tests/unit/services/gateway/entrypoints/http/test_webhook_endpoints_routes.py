"""The webhook endpoint and delivery routes in front of fake stubs: what each asks notification, the update mask
made from a PATCH body, the secret in the answers of create and rotate only (never in reads, lists or the audit
log), the fields notification refuses named as the body has them, the key holder's scoping, and the replay's
required Idempotency-Key."""

from __future__ import annotations

import json

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.notification.v1 import notification_pb2 as pb
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

KEY = {"Authorization": "Bearer bk_mine"}
SECRET = "whsec_c2VjcmV0LW5ldmVyLWluLWEtbG9nLW9yLWEtbGlzdA=="
CREATE = "/api/v1/admin/organisations/org_1/webhook-endpoints"
ENDPOINT = "/api/v1/admin/webhook-endpoints/wep_1"


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway()
    gateway.add_key("bk_mine", "org_1")
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(id="org_1")))
    return gateway


def _endpoint(endpoint_id: str = "wep_1", organisation_id: str = "org_1", **fields) -> pb.WebhookEndpoint:
    fields = {"url": "https://hooks.acme.example/billing", "event_types": ["invoice.issued"], "enabled": True,
              "description": "ERP", **fields}
    endpoint = pb.WebhookEndpoint(id=endpoint_id, organisation_id=organisation_id, **fields)
    endpoint.create_time.FromSeconds(1_794_767_400)
    endpoint.update_time.FromSeconds(1_794_767_400)
    return endpoint


def _delivery(delivery_id: str = "dlv_1", state: int = pb.WEBHOOK_DELIVERY_STATE_DELIVERED) -> pb.WebhookDelivery:
    delivery = pb.WebhookDelivery(
        id=delivery_id, endpoint_id="wep_1", organisation_id="org_1", event_id="test_1", event_type="webhook.test",
        webhook_id="msg_0123", state=state, attempts=1, last_status_code=200, payload='{"type":"webhook.test"}')
    delivery.create_time.FromSeconds(1_794_767_400)
    if state == pb.WEBHOOK_DELIVERY_STATE_DELIVERED:
        delivery.delivered_time.FromSeconds(1_794_767_401)
    return delivery


def _audit_text(gateway: Gateway) -> str:
    return json.dumps(gateway.audit, default=str)


# --- create --------------------------------------------------------------------------------------------------


def test_create_sends_the_body_for_the_paths_organisation_and_answers_the_secret_once(gateway):
    gateway.notification.answer("CreateEndpoint", pb.CreateEndpointResponse(endpoint=_endpoint(), secret=SECRET))
    response = gateway.http.post(CREATE, headers=ADMIN, json={
        "url": "https://hooks.acme.example/billing", "event_types": ["invoice.issued"], "description": "ERP"})
    assert response.status_code == 201, response.text
    assert response.json() == {
        "id": "wep_1", "organisation_id": "org_1", "url": "https://hooks.acme.example/billing",
        "event_types": ["invoice.issued"], "description": "ERP", "enabled": True, "disabled_reason": "",
        "created_at": "2026-11-15T18:30:00Z", "updated_at": "2026-11-15T18:30:00Z", "disabled_at": None,
        "previous_secret_expires_at": None, "secret": SECRET}
    sent = gateway.notification.requests["CreateEndpoint"][0]
    assert (sent.organisation_id, sent.url, list(sent.event_types), sent.description) == (
        "org_1", "https://hooks.acme.example/billing", ["invoice.issued"], "ERP")
    assert gateway.invoicing.requests["GetOrganisation"][0].organisation_id == "org_1"
    assert gateway.audited() == [("webhook_endpoint.create", "wep_1")]
    assert SECRET not in _audit_text(gateway) and gateway.audit[0]["actor"] == "admin-token"


def test_an_endpoint_for_an_organisation_invoicing_does_not_have_is_404(gateway):
    gateway.invoicing.replies.clear()
    gateway.invoicing.answer("GetOrganisation", NotFound("no organisation with id 'org_1'"))
    response = gateway.http.post(CREATE, headers=ADMIN, json={"url": "https://hooks.acme.example/"})
    assert response.status_code == 404 and gateway.notification.requests == {} and gateway.audited() == []


@pytest.mark.parametrize(("refusal", "field", "code"), [
    (InvalidArgument("10.0.0.7 is a private address", field="url"), "url", 400),
    (InvalidArgument("unknown event type 'invoice.created'", field="event_types[0]"), "event_types[0]", 400),
    (InvalidArgument("at most 500 characters", field="description"), "description", 400),
    (FailedPrecondition("an organisation has at most 20 endpoints"), None, 422),
])
def test_notifications_refusals_of_a_new_endpoint_name_the_bodys_field(gateway, refusal, field, code):
    gateway.notification.answer("CreateEndpoint", refusal)
    response = gateway.http.post(CREATE, headers=ADMIN, json={"url": "http://10.0.0.7/", "event_types": ["x"]})
    assert response.status_code == code and response.json().get("field") == field, response.text
    assert gateway.audited() == []


@pytest.mark.parametrize(("body", "field"), [
    ({}, "url"), ({"url": 7}, "url"), ({"url": "https://a.example/", "event_types": "invoice.paid"}, "event_types"),
    ({"url": "https://a.example/", "secret": "whsec_mine"}, "secret"),
])
def test_a_body_that_is_not_an_endpoint_is_refused_before_notification_is_asked(gateway, body, field):
    response = gateway.http.post(CREATE, headers=ADMIN, json=body)
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert "CreateEndpoint" not in gateway.notification.requests


# --- read ----------------------------------------------------------------------------------------------------


def test_the_list_is_an_organisations_endpoints_without_secrets(gateway):
    gateway.notification.answer("ListEndpoints", pb.ListEndpointsResponse(endpoints=[_endpoint()],
                                                                          next_page_token="n"))
    response = gateway.http.get("/api/v1/admin/webhook-endpoints", headers=ADMIN, params={
        "organisation_id": "org_1", "page_size": 10, "page_token": "wep_9"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [e["id"] for e in body["data"]] == ["wep_1"] and body["next_page_token"] == "n"
    assert "secret" not in body["data"][0]
    sent = gateway.notification.requests["ListEndpoints"][0]
    assert (sent.organisation_id, sent.page_size, sent.page_token) == ("org_1", 10, "wep_9")


def test_the_list_needs_an_organisation(gateway):
    response = gateway.http.get("/api/v1/admin/webhook-endpoints", headers=ADMIN)
    assert response.status_code == 400 and response.json()["field"] == "organisation_id"


def test_an_endpoint_read_has_no_secret_and_says_until_when_the_old_one_signs(gateway):
    rotated = _endpoint()
    rotated.previous_secret_expire_time.FromSeconds(1_794_771_000)
    gateway.notification.answer("GetEndpoint", pb.GetEndpointResponse(endpoint=rotated))
    body = gateway.http.get(ENDPOINT, headers=ADMIN).json()
    assert "secret" not in body and body["previous_secret_expires_at"] == "2026-11-15T19:30:00Z"
    assert gateway.notification.requests["GetEndpoint"][0].endpoint_id == "wep_1"


def test_an_unknown_endpoint_is_404(gateway):
    gateway.notification.answer("GetEndpoint", NotFound("no webhook endpoint with id 'wep_9'"))
    assert gateway.http.get("/api/v1/admin/webhook-endpoints/wep_9", headers=ADMIN).status_code == 404


# --- update --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "mask"), [
    ({"enabled": True}, ["enabled"]),
    ({"url": "https://new.acme.example/", "description": ""}, ["description", "url"]),
    ({"event_types": []}, ["event_types"]),
    ({"enabled": False, "event_types": ["invoice.paid"], "url": "https://a.example/", "description": "d"},
     ["description", "enabled", "event_types", "url"]),
])
def test_the_fields_a_patch_body_has_are_the_update_mask(gateway, body, mask):
    gateway.notification.answer("UpdateEndpoint", pb.UpdateEndpointResponse(endpoint=_endpoint()))
    response = gateway.http.patch(ENDPOINT, headers=ADMIN, json=body)
    assert response.status_code == 200, response.text
    sent = gateway.notification.requests["UpdateEndpoint"][0]
    assert sent.endpoint.id == "wep_1" and list(sent.update_mask.paths) == mask
    given = {"url": sent.endpoint.url, "event_types": list(sent.endpoint.event_types),
             "description": sent.endpoint.description, "enabled": sent.endpoint.enabled}
    assert {name: given[name] for name in body} == body
    assert gateway.audited() == [("webhook_endpoint.update", "wep_1")]


@pytest.mark.parametrize(("body", "field"), [
    ({}, None), ({"enabled": None}, "enabled"), ({"url": None}, "url"), ({"enabled": "yes please"}, "enabled"),
    ({"secret": "whsec_x"}, "secret"),
])
def test_a_patch_that_changes_nothing_or_nulls_a_field_is_refused_before_notification_is_asked(gateway, body,
                                                                                                field):
    response = gateway.http.patch(ENDPOINT, headers=ADMIN, json=body)
    assert response.status_code == 400 and response.json().get("field") == field, response.text
    assert "UpdateEndpoint" not in gateway.notification.requests and gateway.audited() == []


@pytest.mark.parametrize(("refusal", "field"), [
    (InvalidArgument("127.0.0.1 is a loopback address", field="endpoint.url"), "url"),
    (InvalidArgument("unknown event type 'x'", field="endpoint.event_types[1]"), "event_types[1]"),
    (InvalidArgument("at most 500 characters", field="description"), "description"),
])
def test_notifications_refusals_of_a_change_name_the_bodys_field(gateway, refusal, field):
    gateway.notification.answer("UpdateEndpoint", refusal)
    response = gateway.http.patch(ENDPOINT, headers=ADMIN, json={"url": "http://127.0.0.1/"})
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert gateway.audited() == []


# --- delete, rotate, test ------------------------------------------------------------------------------------


def test_delete_is_204_and_audited(gateway):
    gateway.notification.answer("DeleteEndpoint", pb.DeleteEndpointResponse())
    response = gateway.http.delete(ENDPOINT, headers=ADMIN)
    assert response.status_code == 204 and response.content == b""
    assert gateway.notification.requests["DeleteEndpoint"][0].endpoint_id == "wep_1"
    assert gateway.audited() == [("webhook_endpoint.delete", "wep_1")]


def test_rotate_sends_the_overlap_and_answers_the_new_secret_once(gateway):
    gateway.notification.answer("RotateEndpointSecret",
                                pb.RotateEndpointSecretResponse(endpoint=_endpoint(), secret=SECRET))
    response = gateway.http.post(f"{ENDPOINT}/rotate-secret", headers=ADMIN, json={"overlap_seconds": 3600})
    assert response.status_code == 200 and response.json()["secret"] == SECRET, response.text
    sent = gateway.notification.requests["RotateEndpointSecret"][0]
    assert sent.endpoint_id == "wep_1" and sent.overlap.ToSeconds() == 3600
    assert gateway.audited() == [("webhook_endpoint.rotate_secret", "wep_1")] and SECRET not in _audit_text(gateway)


def test_rotate_without_an_overlap_leaves_it_to_notification_and_zero_is_sent_as_zero(gateway):
    gateway.notification.answer("RotateEndpointSecret",
                                pb.RotateEndpointSecretResponse(endpoint=_endpoint(), secret=SECRET))
    assert gateway.http.post(f"{ENDPOINT}/rotate-secret", headers=ADMIN).status_code == 200
    assert gateway.http.post(f"{ENDPOINT}/rotate-secret", headers=ADMIN, json={}).status_code == 200
    assert gateway.http.post(f"{ENDPOINT}/rotate-secret", headers=ADMIN, json={"overlap_seconds": 0}).status_code == 200
    unset, empty, zero = gateway.notification.requests["RotateEndpointSecret"]
    assert not unset.HasField("overlap") and not empty.HasField("overlap")
    assert zero.HasField("overlap") and zero.overlap.ToSeconds() == 0


def test_notifications_refusal_of_the_overlap_names_overlap_seconds(gateway):
    gateway.notification.answer("RotateEndpointSecret", InvalidArgument("must be between 0 and 7 days",
                                                                        field="overlap"))
    response = gateway.http.post(f"{ENDPOINT}/rotate-secret", headers=ADMIN, json={"overlap_seconds": 10**7})
    assert response.status_code == 400 and response.json()["field"] == "overlap_seconds"
    assert gateway.audited() == []


def test_a_test_webhook_answers_its_delivery(gateway):
    gateway.notification.answer("SendTestWebhook", pb.SendTestWebhookResponse(
        delivery=_delivery(state=pb.WEBHOOK_DELIVERY_STATE_PENDING)))
    response = gateway.http.post(f"{ENDPOINT}/test", headers=ADMIN)
    assert response.status_code == 201, response.text
    assert (response.json()["id"], response.json()["state"], response.json()["event_type"]) == (
        "dlv_1", "pending", "webhook.test")
    assert gateway.notification.requests["SendTestWebhook"][0].endpoint_id == "wep_1"


# --- deliveries ----------------------------------------------------------------------------------------------


def test_delivery_filters_go_to_notification_with_the_state_as_a_number(gateway):
    gateway.notification.answer("ListDeliveries", pb.ListDeliveriesResponse(deliveries=[_delivery()]))
    response = gateway.http.get("/api/v1/admin/webhook-deliveries", headers=ADMIN, params={
        "endpoint_id": "wep_1", "organisation_id": "org_1", "state": "failed", "page_size": 5})
    assert response.status_code == 200, response.text
    assert response.json()["data"][0] == {
        "id": "dlv_1", "endpoint_id": "wep_1", "organisation_id": "org_1", "event_id": "test_1",
        "event_type": "webhook.test", "webhook_id": "msg_0123", "state": "delivered", "attempts": 1,
        "last_status_code": 200, "last_error": "", "payload": '{"type":"webhook.test"}',
        "created_at": "2026-11-15T18:30:00Z", "delivered_at": "2026-11-15T18:30:01Z", "next_attempt_at": None}
    sent = gateway.notification.requests["ListDeliveries"][0]
    assert (sent.endpoint_id, sent.organisation_id, sent.state, sent.page_size) == (
        "wep_1", "org_1", pb.WEBHOOK_DELIVERY_STATE_FAILED, 5)
    gateway.http.get("/api/v1/admin/webhook-deliveries", headers=ADMIN)
    assert gateway.notification.requests["ListDeliveries"][1].state == pb.WEBHOOK_DELIVERY_STATE_UNSPECIFIED


def test_an_unknown_state_is_refused_naming_it(gateway):
    response = gateway.http.get("/api/v1/admin/webhook-deliveries", headers=ADMIN, params={"state": "sent"})
    assert response.status_code == 400 and response.json()["field"] == "state"
    assert gateway.notification.requests == {}


def test_a_delivery_comes_with_its_attempts(gateway):
    failed, ok = pb.WebhookAttempt(number=1, status_code=503, response_body="down", error=""), pb.WebhookAttempt(
        number=2, status_code=200, response_body="ok")
    failed.start_time.FromSeconds(1_794_767_400)
    failed.end_time.FromSeconds(1_794_767_401)
    failed.duration.FromMilliseconds(1250)
    gateway.notification.answer("GetDelivery", pb.GetDeliveryResponse(delivery=_delivery(), attempts=[failed, ok]))
    body = gateway.http.get("/api/v1/admin/webhook-deliveries/dlv_1", headers=ADMIN).json()
    assert gateway.notification.requests["GetDelivery"][0].delivery_id == "dlv_1"
    assert body["delivery_attempts"] == [
        {"number": 1, "started_at": "2026-11-15T18:30:00Z", "ended_at": "2026-11-15T18:30:01Z", "status_code": 503,
         "response_body": "down", "duration_ms": 1250, "error": ""},
        {"number": 2, "started_at": None, "ended_at": None, "status_code": 200, "response_body": "ok",
         "duration_ms": 0, "error": ""}]


REPLAY = "/api/v1/admin/webhook-deliveries/dlv_1/replay"


def test_a_replay_without_an_idempotency_key_is_400_naming_it(gateway):
    response = gateway.http.post(REPLAY, headers=ADMIN)
    assert response.status_code == 400 and response.json()["field"] == "Idempotency-Key"
    assert gateway.notification.requests == {} and gateway.audited() == []


def test_a_replay_is_201_then_replayed_with_the_same_key_and_audited_once(gateway):
    copy = _delivery("dlv_2", state=pb.WEBHOOK_DELIVERY_STATE_PENDING)
    gateway.notification.answer("ReplayDelivery", pb.ReplayDeliveryResponse(delivery=copy, created=True),
                                pb.ReplayDeliveryResponse(delivery=copy, created=False))
    headers = {**ADMIN, "Idempotency-Key": "ops-7"}
    first, again = gateway.http.post(REPLAY, headers=headers), gateway.http.post(REPLAY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] == "dlv_2"
    sent = gateway.notification.requests["ReplayDelivery"][0]
    assert (sent.delivery_id, sent.idempotency_key) == ("dlv_1", "ops-7")
    assert gateway.audited() == [("webhook_delivery.replay", "dlv_2")]


@pytest.mark.parametrize(("refusal", "code", "field"), [
    (InvalidArgument("is required (at most 200 characters)", field="idempotency_key"), 400, "Idempotency-Key"),
    (FailedPrecondition("the endpoint is disabled or deleted: enable it before replaying"), 422, None),
    (NotFound("no webhook delivery with id 'dlv_1'"), 404, None),
])
def test_notifications_refusals_of_a_replay(gateway, refusal, code, field):
    gateway.notification.answer("ReplayDelivery", refusal)
    response = gateway.http.post(REPLAY, headers={**ADMIN, "Idempotency-Key": "k"})
    assert response.status_code == code and response.json().get("field") == field, response.text
    assert gateway.audited() == []


def test_the_admin_routes_need_the_admin_token(gateway):
    for method, path in (("get", "/api/v1/admin/webhook-endpoints?organisation_id=org_1"), ("get", ENDPOINT),
                         ("post", CREATE), ("post", REPLAY), ("get", "/api/v1/admin/webhook-deliveries")):
        assert gateway.http.request(method, path, headers=KEY).status_code == 401, path
    assert gateway.notification.requests == {}


# --- the key holder's own organisation -----------------------------------------------------------------------

MINE = "/api/v1/webhook-endpoints"


def test_a_key_holder_creates_and_lists_endpoints_of_its_own_organisation_only(gateway):
    gateway.notification.answer("CreateEndpoint", pb.CreateEndpointResponse(endpoint=_endpoint(), secret=SECRET))
    gateway.notification.answer("ListEndpoints", pb.ListEndpointsResponse(endpoints=[_endpoint()]))
    created = gateway.http.post(MINE, headers=KEY, json={"url": "https://hooks.acme.example/billing"})
    assert created.status_code == 201 and created.json()["secret"] == SECRET, created.text
    listed = gateway.http.get(MINE, headers=KEY, params={"organisation_id": "org_other"})
    assert listed.status_code == 200 and "secret" not in listed.json()["data"][0]
    assert gateway.notification.requests["CreateEndpoint"][0].organisation_id == "org_1"
    assert gateway.notification.requests["ListEndpoints"][0].organisation_id == "org_1"
    # The key's write is traceable to its project, and the secret is not in the log.
    assert gateway.audited() == [("webhook_endpoint.create", "wep_1")]
    assert gateway.audit[0]["actor"] == "project:prj_bk_mine" and SECRET not in _audit_text(gateway)


def test_a_key_holder_cannot_name_an_organisation_in_the_body(gateway):
    response = gateway.http.post(MINE, headers=KEY, json={"url": "https://a.example/", "organisation_id": "org_2"})
    assert response.status_code == 400 and response.json()["field"] == "organisation_id"
    assert gateway.notification.requests == {}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("get", f"{MINE}/wep_2", None), ("patch", f"{MINE}/wep_2", {"enabled": False}), ("delete", f"{MINE}/wep_2", None),
    ("post", f"{MINE}/wep_2/rotate-secret", None), ("post", f"{MINE}/wep_2/test", None),
])
def test_another_organisations_endpoint_is_404_as_a_missing_one_and_nothing_is_changed(gateway, method, path, body):
    gateway.notification.answer("GetEndpoint", pb.GetEndpointResponse(endpoint=_endpoint("wep_2", "org_2")))
    response = gateway.http.request(method, path, headers=KEY, json=body)
    assert response.status_code == 404 and response.json()["field"] == "endpoint_id", response.text
    gateway.notification.replies.clear()
    gateway.notification.answer("GetEndpoint", NotFound("no webhook endpoint with id 'wep_2'"))
    missing = gateway.http.request(method, path, headers=KEY, json=body)
    assert missing.status_code == 404 and missing.json() == response.json()
    assert set(gateway.notification.requests) == {"GetEndpoint"} and gateway.audited() == []


def test_a_key_holder_changes_rotates_tests_and_deletes_its_own_endpoint(gateway):
    gateway.notification.answer("GetEndpoint", pb.GetEndpointResponse(endpoint=_endpoint()))
    gateway.notification.answer("UpdateEndpoint", pb.UpdateEndpointResponse(endpoint=_endpoint(enabled=False)))
    gateway.notification.answer("RotateEndpointSecret",
                                pb.RotateEndpointSecretResponse(endpoint=_endpoint(), secret=SECRET))
    gateway.notification.answer("SendTestWebhook", pb.SendTestWebhookResponse(delivery=_delivery()))
    gateway.notification.answer("DeleteEndpoint", pb.DeleteEndpointResponse())
    assert gateway.http.get(f"{MINE}/wep_1", headers=KEY).json()["id"] == "wep_1"
    changed = gateway.http.patch(f"{MINE}/wep_1", headers=KEY, json={"enabled": False})
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert list(gateway.notification.requests["UpdateEndpoint"][0].update_mask.paths) == ["enabled"]
    rotated = gateway.http.post(f"{MINE}/wep_1/rotate-secret", headers=KEY, json={"overlap_seconds": 0})
    assert rotated.status_code == 200 and rotated.json()["secret"] == SECRET
    assert gateway.http.post(f"{MINE}/wep_1/test", headers=KEY).status_code == 201
    assert gateway.http.delete(f"{MINE}/wep_1", headers=KEY).status_code == 204
    assert gateway.audited() == [("webhook_endpoint.update", "wep_1"), ("webhook_endpoint.rotate_secret", "wep_1"),
                                 ("webhook_endpoint.delete", "wep_1")]
    assert {entry["actor"] for entry in gateway.audit} == {"project:prj_bk_mine"}
    assert SECRET not in _audit_text(gateway)


def test_a_key_holder_lists_only_its_organisations_deliveries(gateway):
    gateway.notification.answer("ListDeliveries", pb.ListDeliveriesResponse(deliveries=[_delivery()]))
    response = gateway.http.get("/api/v1/webhook-deliveries", headers=KEY, params={
        "organisation_id": "org_other", "endpoint_id": "wep_1", "state": "delivered"})
    assert response.status_code == 200 and [d["id"] for d in response.json()["data"]] == ["dlv_1"]
    sent = gateway.notification.requests["ListDeliveries"][0]
    # The organisation is the key's whatever the query says: another organisation's endpoint lists nothing.
    assert (sent.organisation_id, sent.endpoint_id, sent.state) == (
        "org_1", "wep_1", pb.WEBHOOK_DELIVERY_STATE_DELIVERED)


def test_the_key_holder_routes_need_a_valid_key_and_have_no_replay(gateway):
    assert gateway.http.get(MINE).status_code == 401
    assert gateway.http.get(MINE, headers=ADMIN).status_code == 401  # the admin token is no key
    assert gateway.http.get("/api/v1/webhook-deliveries", headers={"Authorization": "Bearer bk_x"}).status_code == 401
    assert gateway.http.post("/api/v1/webhook-deliveries/dlv_1/replay", headers=KEY).status_code == 404
    assert gateway.notification.requests == {}


def test_openapi_documents_every_webhook_route(gateway):
    paths = gateway.http.get("/openapi.json").json()["paths"]
    routes = [(path, method) for path, operations in paths.items() if "/webhook-endpoints" in path
              or "/webhook-deliveries" in path for method in operations]
    assert len(routes) == 18  # 10 admin, 8 for key holders
    for path, method in routes:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (path, method)
        assert {"400", "401", "404"} <= set(operation["responses"]), (path, method)
        assert operation["tags"] == (["webhook endpoints"] if "/admin/" in path else ["webhook endpoints (API key)"])
    create = paths["/api/v1/admin/organisations/{organisation_id}/webhook-endpoints"]["post"]
    assert "shown again" in create["description"]
    replay = paths["/api/v1/admin/webhook-deliveries/{delivery_id}/replay"]["post"]
    assert {"201", "200"} <= set(replay["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in replay["parameters"])
    assert {p["name"] for p in paths["/api/v1/webhook-deliveries"]["get"]["parameters"]} == {
        "endpoint_id", "state", "page_size", "page_token"}  # no organisation to name
