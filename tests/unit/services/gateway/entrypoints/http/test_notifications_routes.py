"""The email message routes in front of fake stubs: what each asks notification, how messages, attempts and
recipients come back (kinds and states by name), the key holder's scoping, the preview page's
Content-Security-Policy, the resend's required Idempotency-Key, and what is audited."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.notification.v1 import notification_pb2 as pb
from billing_runtime.errors import InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

KEY = {"Authorization": "Bearer bk_mine"}
RECIPIENTS = "/api/v1/admin/organisations/org_1/recipients"


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway()
    gateway.add_key("bk_mine", "org_1")
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(id="org_1")))
    return gateway


def _message(message_id: str = "msg_1", state: int = pb.MESSAGE_STATE_SENT, **fields) -> pb.Message:
    fields = {"attempts": 1, "last_reply": "250 2.0.0 queued", **fields}
    message = pb.Message(id=message_id, organisation_id="org_1", invoice_id="inv_1",
                         kind=pb.MESSAGE_KIND_INVOICE_ISSUED, recipient="billing@acme.example",
                         cc=["cfo@acme.example"], subject="Invoice INV/2026/0001", state=state, event_id="evt_1",
                         message_id_header="<abc@billing.example>", **fields)
    message.create_time.FromSeconds(1_794_767_400)
    if state == pb.MESSAGE_STATE_SENT:
        message.sent_time.FromSeconds(1_794_767_401)
    return message


# --- list ----------------------------------------------------------------------------------------------------


def test_a_listed_message_has_its_kind_and_state_by_name(gateway):
    gateway.notification.answer("ListMessages", pb.ListMessagesResponse(messages=[_message()], next_page_token="n"))
    body = gateway.http.get("/api/v1/admin/messages", headers=ADMIN).json()
    assert body == {"data": [{
        "id": "msg_1", "organisation_id": "org_1", "invoice_id": "inv_1", "kind": "invoice_issued",
        "recipient": "billing@acme.example", "cc": ["cfo@acme.example"], "subject": "Invoice INV/2026/0001",
        "state": "sent", "event_id": "evt_1", "message_id_header": "<abc@billing.example>", "attempts": 1,
        "last_reply": "250 2.0.0 queued", "created_at": "2026-11-15T18:30:00Z", "sent_at": "2026-11-15T18:30:01Z",
        "next_attempt_at": None}], "next_page_token": "n"}


def test_list_filters_go_to_notification_as_enum_numbers(gateway):
    gateway.notification.answer("ListMessages", pb.ListMessagesResponse())
    response = gateway.http.get("/api/v1/admin/messages", headers=ADMIN, params={
        "organisation_id": "org_2", "invoice_id": "inv_9", "kind": "payment_retry", "state": "unknown",
        "page_size": 20, "page_token": "msg_x"})
    assert response.status_code == 200, response.text
    sent = gateway.notification.requests["ListMessages"][0]
    assert (sent.organisation_id, sent.invoice_id, sent.kind, sent.state, sent.page_size, sent.page_token) == (
        "org_2", "inv_9", pb.MESSAGE_KIND_PAYMENT_RETRY, pb.MESSAGE_STATE_UNKNOWN, 20, "msg_x")
    gateway.http.get("/api/v1/admin/messages", headers=ADMIN)
    unfiltered = gateway.notification.requests["ListMessages"][1]
    assert (unfiltered.kind, unfiltered.state) == (pb.MESSAGE_KIND_UNSPECIFIED, pb.MESSAGE_STATE_UNSPECIFIED)


@pytest.mark.parametrize(("params", "field"), [
    ({"kind": "INVOICE_ISSUED"}, "kind"), ({"kind": "unspecified"}, "kind"), ({"state": "delivered"}, "state"),
    ({"page_size": 501}, "page_size"),
])
def test_unknown_filters_are_refused_naming_them_before_notification_is_asked(gateway, params, field):
    response = gateway.http.get("/api/v1/admin/messages", headers=ADMIN, params=params)
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert "ListMessages" not in gateway.notification.requests


def test_a_bad_page_token_is_notifications_400(gateway):
    gateway.notification.answer("ListMessages", InvalidArgument("is not a token returned by a previous page",
                                                                field="page_token"))
    response = gateway.http.get("/api/v1/admin/messages", headers=ADMIN, params={"page_token": "nope"})
    assert response.status_code == 400 and response.json()["field"] == "page_token"


def test_messages_are_admin_only(gateway):
    assert gateway.http.get("/api/v1/admin/messages").status_code == 401
    assert gateway.http.get("/api/v1/admin/messages", headers=KEY).status_code == 401
    assert gateway.notification.requests == {}


# --- one message ---------------------------------------------------------------------------------------------


def test_a_message_comes_with_its_delivery_attempts(gateway):
    first, second = pb.Attempt(number=1, outcome="transient", reply="451 4.3.0 try later"), pb.Attempt(
        number=2, outcome="sent", reply="250 2.0.0 queued")
    first.start_time.FromSeconds(1_794_767_400)
    first.end_time.FromSeconds(1_794_767_402)
    second.start_time.FromSeconds(1_794_767_460)
    gateway.notification.answer("GetMessage", pb.GetMessageResponse(message=_message(attempts=2),
                                                                    attempts=[first, second]))
    body = gateway.http.get("/api/v1/admin/messages/msg_1", headers=ADMIN).json()
    assert gateway.notification.requests["GetMessage"][0].message_id == "msg_1"
    assert (body["id"], body["attempts"], body["state"]) == ("msg_1", 2, "sent")
    assert body["delivery_attempts"] == [
        {"number": 1, "started_at": "2026-11-15T18:30:00Z", "ended_at": "2026-11-15T18:30:02Z",
         "outcome": "transient", "reply": "451 4.3.0 try later"},
        {"number": 2, "started_at": "2026-11-15T18:31:00Z", "ended_at": None, "outcome": "sent",
         "reply": "250 2.0.0 queued"}]


def test_a_queued_message_says_when_it_is_tried_next(gateway):
    queued = _message(state=pb.MESSAGE_STATE_QUEUED)
    queued.next_attempt_time.FromSeconds(1_794_767_430)
    gateway.notification.answer("GetMessage", pb.GetMessageResponse(message=queued))
    body = gateway.http.get("/api/v1/admin/messages/msg_1", headers=ADMIN).json()
    assert (body["state"], body["next_attempt_at"], body["sent_at"]) == ("queued", "2026-11-15T18:30:30Z", None)


def test_an_unknown_message_is_404(gateway):
    gateway.notification.answer("GetMessage", NotFound("no message with id 'msg_9'"))
    response = gateway.http.get("/api/v1/admin/messages/msg_9", headers=ADMIN)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_a_state_newer_than_the_gateway_is_null_not_an_error(gateway):
    gateway.notification.answer("GetMessage", pb.GetMessageResponse(message=_message(state=99)))
    response = gateway.http.get("/api/v1/admin/messages/msg_1", headers=ADMIN)
    assert response.status_code == 200 and response.json()["state"] is None


# --- preview -------------------------------------------------------------------------------------------------

HOSTILE = ("<html><body><p>Dear Acme</p><script>alert(document.cookie)</script>"
           "<img src=x onerror=alert(1)></body></html>")


def _preview() -> pb.PreviewMessageResponse:
    return pb.PreviewMessageResponse(subject="Invoice INV/2026/0001", html=HOSTILE, text="Dear Acme",
                                     attachments=["INV-2026-0001.pdf"])


def test_the_preview_is_subject_html_text_and_attachments(gateway):
    gateway.notification.answer("PreviewMessage", _preview())
    body = gateway.http.get("/api/v1/admin/messages/msg_1/preview", headers=ADMIN).json()
    assert body == {"subject": "Invoice INV/2026/0001", "html": HOSTILE, "text": "Dear Acme",
                    "attachments": ["INV-2026-0001.pdf"]}
    assert gateway.notification.requests["PreviewMessage"][0].message_id == "msg_1"


def test_the_preview_page_is_html_under_a_policy_that_runs_no_script(gateway):
    gateway.notification.answer("PreviewMessage", _preview())
    response = gateway.http.get("/api/v1/admin/messages/msg_1/preview.html", headers=ADMIN)
    assert response.status_code == 200 and response.text == HOSTILE
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = {d.split()[0]: d.split()[1:] for d in response.headers["content-security-policy"].split("; ")}
    assert policy["default-src"] == ["'none'"] and "script-src" not in policy  # no script from anywhere
    assert policy["sandbox"] == []  # an opaque origin, no scripts, no forms, whatever a template says
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["style-src"] == ["'unsafe-inline'"]  # mail styles itself inline
    assert response.headers["x-content-type-options"] == "nosniff"


def test_the_preview_page_of_an_unknown_message_is_a_json_404(gateway):
    gateway.notification.answer("PreviewMessage", NotFound("no message with id 'msg_9'"))
    response = gateway.http.get("/api/v1/admin/messages/msg_9/preview.html", headers=ADMIN)
    assert response.status_code == 404 and response.json()["error"] == "not_found"


# --- resend --------------------------------------------------------------------------------------------------

RESEND = "/api/v1/admin/messages/msg_1/resend"


def _copy() -> pb.Message:
    return _message("msg_2", state=pb.MESSAGE_STATE_QUEUED, attempts=0, last_reply="")


def test_a_resend_without_an_idempotency_key_is_400_naming_it(gateway):
    response = gateway.http.post(RESEND, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "Idempotency-Key" and "required" in response.json()["detail"]
    assert "ResendMessage" not in gateway.notification.requests and gateway.audited() == []


def test_a_resend_is_201_then_replayed_with_the_same_key_and_audited_once(gateway):
    gateway.notification.answer("ResendMessage", pb.ResendMessageResponse(message=_copy(), created=True),
                                pb.ResendMessageResponse(message=_copy(), created=False))
    headers = {**ADMIN, "Idempotency-Key": "ops-42"}
    first, again = gateway.http.post(RESEND, headers=headers), gateway.http.post(RESEND, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] == "msg_2" and first.json()["state"] == "queued"
    sent = gateway.notification.requests["ResendMessage"][0]
    assert (sent.message_id, sent.idempotency_key) == ("msg_1", "ops-42")
    assert gateway.audited() == [("message.resend", "msg_2")]


def test_notifications_refusal_of_the_key_names_the_header(gateway):
    gateway.notification.answer("ResendMessage", InvalidArgument("is required (at most 200 characters)",
                                                                 field="idempotency_key"))
    response = gateway.http.post(RESEND, headers={**ADMIN, "Idempotency-Key": "k" * 201})
    assert response.status_code == 400 and response.json()["field"] == "Idempotency-Key"
    assert gateway.audited() == []


def test_resending_an_unknown_message_is_404(gateway):
    gateway.notification.answer("ResendMessage", NotFound("no message with id 'msg_1'"))
    response = gateway.http.post(RESEND, headers={**ADMIN, "Idempotency-Key": "k"})
    assert response.status_code == 404 and gateway.audited() == []


# --- recipients ----------------------------------------------------------------------------------------------


def _recipients(cc=(), opted_out=()) -> pb.Recipients:
    return pb.Recipients(organisation_id="org_1", cc=list(cc), opted_out=list(opted_out))


def test_recipients_are_read_by_name_for_a_known_organisation(gateway):
    gateway.notification.answer("GetRecipients", pb.GetRecipientsResponse(recipients=_recipients(
        ["cfo@acme.example"], [pb.MESSAGE_KIND_PAYMENT_RETRY, pb.MESSAGE_KIND_INVOICE_OVERDUE])))
    body = gateway.http.get(RECIPIENTS, headers=ADMIN).json()
    assert body == {"organisation_id": "org_1", "cc": ["cfo@acme.example"],
                    "opted_out": ["payment_retry", "invoice_overdue"]}
    assert gateway.invoicing.requests["GetOrganisation"][0].organisation_id == "org_1"
    assert gateway.notification.requests["GetRecipients"][0].organisation_id == "org_1"


def test_recipients_of_an_organisation_invoicing_does_not_have_are_404(gateway):
    gateway.invoicing.replies.clear()
    gateway.invoicing.answer("GetOrganisation", NotFound("no organisation with id 'org_1'"))
    assert gateway.http.get(RECIPIENTS, headers=ADMIN).status_code == 404
    assert gateway.http.put(RECIPIENTS, headers=ADMIN, json={"cc": []}).status_code == 404
    assert gateway.notification.requests == {} and gateway.audited() == []


def test_setting_recipients_sends_kinds_as_numbers_and_is_audited(gateway):
    gateway.notification.answer("SetRecipients", pb.SetRecipientsResponse(recipients=_recipients(
        ["cfo@acme.example"], [pb.MESSAGE_KIND_PAYMENT_RETRY])))
    response = gateway.http.put(RECIPIENTS, headers=ADMIN, json={"cc": ["cfo@acme.example"],
                                                                 "opted_out": ["payment_retry"]})
    assert response.status_code == 200, response.text
    assert response.json() == {"organisation_id": "org_1", "cc": ["cfo@acme.example"], "opted_out": ["payment_retry"]}
    sent = gateway.notification.requests["SetRecipients"][0].recipients
    assert (sent.organisation_id, list(sent.cc), list(sent.opted_out)) == (
        "org_1", ["cfo@acme.example"], [pb.MESSAGE_KIND_PAYMENT_RETRY])
    assert gateway.audited() == [("recipients.set", "org_1")]


def test_a_field_left_out_of_put_is_emptied(gateway):
    gateway.notification.answer("SetRecipients", pb.SetRecipientsResponse(recipients=_recipients()))
    assert gateway.http.put(RECIPIENTS, headers=ADMIN, json={}).status_code == 200
    sent = gateway.notification.requests["SetRecipients"][0].recipients
    assert (list(sent.cc), list(sent.opted_out)) == ([], [])


@pytest.mark.parametrize(("refusal", "field"), [
    (InvalidArgument("is not an email address", field="cc[1]"), "cc[1]"),
    (InvalidArgument("at most 10 addresses", field="cc"), "cc"),
    (InvalidArgument("invoice_issued cannot be opted out of: it is a document or a receipt", field="opted_out"),
     "opted_out"),
    (InvalidArgument("is not a message kind", field="recipients.opted_out"), "opted_out"),
])
def test_notifications_refusals_name_the_bodys_field(gateway, refusal, field):
    gateway.notification.answer("SetRecipients", refusal)
    response = gateway.http.put(RECIPIENTS, headers=ADMIN, json={"cc": ["a@acme.example", "not an address"],
                                                                 "opted_out": ["invoice_issued"]})
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert gateway.audited() == []


@pytest.mark.parametrize(("body", "field"), [
    ({"opted_out": ["reminders"]}, "opted_out[0]"), ({"cc": "a@acme.example"}, "cc"), ({"bcc": []}, "bcc"),
])
def test_a_body_that_is_not_recipients_is_refused_before_notification_is_asked(gateway, body, field):
    response = gateway.http.put(RECIPIENTS, headers=ADMIN, json=body)
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert "SetRecipients" not in gateway.notification.requests


# --- the key holder's own messages ---------------------------------------------------------------------------


def test_a_key_holder_lists_only_its_organisations_messages(gateway):
    gateway.notification.answer("ListMessages", pb.ListMessagesResponse(messages=[_message()]))
    response = gateway.http.get("/api/v1/messages", headers=KEY, params={
        "organisation_id": "org_other", "invoice_id": "inv_1", "kind": "invoice_issued", "state": "sent"})
    assert response.status_code == 200 and [m["id"] for m in response.json()["data"]] == ["msg_1"]
    sent = gateway.notification.requests["ListMessages"][0]
    # The organisation is the key's whatever the query says: there is no way to name another.
    assert (sent.organisation_id, sent.invoice_id, sent.kind, sent.state) == (
        "org_1", "inv_1", pb.MESSAGE_KIND_INVOICE_ISSUED, pb.MESSAGE_STATE_SENT)


def test_messages_need_a_valid_key(gateway):
    assert gateway.http.get("/api/v1/messages").status_code == 401
    assert gateway.http.get("/api/v1/messages", headers={"Authorization": "Bearer bk_unknown"}).status_code == 401
    assert gateway.http.get("/api/v1/messages", headers=ADMIN).status_code == 401  # the admin token is no key
    assert gateway.notification.requests == {}


def test_the_key_holder_has_no_admin_message_routes(gateway):
    for path in ("/api/v1/messages/msg_1", "/api/v1/messages/msg_1/preview"):
        assert gateway.http.get(path, headers=KEY).status_code == 404
    assert gateway.notification.requests == {}


def test_openapi_documents_every_message_route(gateway):
    paths = gateway.http.get("/openapi.json").json()["paths"]
    routes = [("/api/v1/admin/messages", "get"), ("/api/v1/admin/messages/{message_id}", "get"),
              ("/api/v1/admin/messages/{message_id}/preview", "get"),
              ("/api/v1/admin/messages/{message_id}/preview.html", "get"),
              ("/api/v1/admin/messages/{message_id}/resend", "post"),
              ("/api/v1/admin/organisations/{organisation_id}/recipients", "get"),
              ("/api/v1/admin/organisations/{organisation_id}/recipients", "put"), ("/api/v1/messages", "get")]
    for path, method in routes:
        operation = paths[path][method]
        assert operation["summary"] and operation["description"], (path, method)
        assert {"400", "401", "404"} <= set(operation["responses"]), (path, method)
        assert operation["tags"] == (["notifications"] if "/admin/" in path else ["notifications (API key)"])
    resend = paths["/api/v1/admin/messages/{message_id}/resend"]["post"]
    assert {"201", "200"} <= set(resend["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in resend["parameters"])
    page = paths["/api/v1/admin/messages/{message_id}/preview.html"]["get"]
    assert "text/html" in page["responses"]["200"]["content"]
    assert {p["name"] for p in paths["/api/v1/messages"]["get"]["parameters"]} == {
        "invoice_id", "kind", "state", "page_size", "page_token"}  # no organisation to name


def test_every_message_kind_of_the_contract_has_a_rest_name():
    from typing import get_args

    from billing.notification.v1 import notification_pb2
    from services.gateway.entrypoints.http.notification_schemas import MessageKindName

    contract = {name.removeprefix("MESSAGE_KIND_").lower() for name in notification_pb2.MessageKind.keys()
                if name != "MESSAGE_KIND_UNSPECIFIED"}
    assert set(get_args(MessageKindName)) == contract
