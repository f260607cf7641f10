"""The dunning routes in front of fake stubs: what each asks payments (and invoicing, whether the organisation
exists), what it answers, the fields payments refuses named as the body names them, and what it audits."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as ipb
from billing.payments.v1 import payments_pb2 as pb
from billing_runtime.errors import InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

POLICY = "/api/v1/admin/organisations/org_1/dunning-policy"
DEFAULT = pb.DunningPolicy(max_attempts=3, base_seconds=86400, factor="2", cap_seconds=1209600)
OWN = pb.DunningPolicy(max_attempts=3, retry_days=[1, 3, 7], base_seconds=86400, factor="2", cap_seconds=1209600)


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway()
    gateway.invoicing.answer("GetOrganisation", ipb.GetOrganisationResponse(organisation=ipb.Organisation(id="org_1")))
    return gateway


def test_an_invoices_dunning(gateway):
    dunning = pb.Dunning(invoice_id="inv_1", state=pb.DUNNING_STATE_RETRYING, attempts=2, policy=OWN,
                         reason="no payment link: the provider refused")
    dunning.due_time.FromSeconds(1_794_767_400)
    dunning.next_time.FromSeconds(1_795_372_200)
    gateway.payments.answer("GetDunning", pb.GetDunningResponse(dunning=dunning))
    body = gateway.http.get("/api/v1/admin/invoices/inv_1/dunning", headers=ADMIN).json()
    assert body == {"invoice_id": "inv_1", "state": "retrying", "attempts": 2,
                    "policy": {"max_attempts": 3, "retry_days": [1, 3, 7], "base_seconds": 86400, "factor": "2",
                               "cap_seconds": 1209600},
                    "due_at": "2026-11-15T18:30:00Z", "next_at": "2026-11-22T18:30:00Z",
                    "reason": "no payment link: the provider refused"}
    assert gateway.payments.requests["GetDunning"][0].invoice_id == "inv_1"


def test_an_invoice_without_dunning_is_404(gateway):
    gateway.payments.answer("GetDunning", NotFound("no dunning for invoice 'inv_1' (not issued yet, nothing to pay, "
                                                   "or no due date)"))
    response = gateway.http.get("/api/v1/admin/invoices/inv_1/dunning", headers=ADMIN)
    assert response.status_code == 404 and "no due date" in response.json()["detail"]


def test_a_policy_is_the_organisations_own_or_the_default(gateway):
    gateway.payments.answer("GetDunningPolicy", pb.GetDunningPolicyResponse(policy=DEFAULT, own=False))
    body = gateway.http.get(POLICY, headers=ADMIN).json()
    assert (body["organisation_id"], body["own"], body["policy"]["max_attempts"]) == ("org_1", False, 3)
    assert gateway.payments.requests["GetDunningPolicy"][0].organisation_id == "org_1"
    assert gateway.invoicing.requests["GetOrganisation"][0].organisation_id == "org_1"


def test_setting_a_policy_sends_it_and_is_audited(gateway):
    gateway.payments.answer("SetDunningPolicy", pb.SetDunningPolicyResponse(policy=OWN, own=True))
    response = gateway.http.put(POLICY, headers=ADMIN, json={"max_attempts": 3, "retry_days": [1, 3, 7]})
    assert response.status_code == 200 and response.json()["own"] is True, response.text
    sent = gateway.payments.requests["SetDunningPolicy"][0]
    assert (sent.organisation_id, sent.clear, sent.policy.max_attempts, list(sent.policy.retry_days)) == (
        "org_1", False, 3, [1, 3, 7])
    assert (sent.policy.base_seconds, sent.policy.factor, sent.policy.cap_seconds) == (0, "", 0)  # payments' defaults
    assert gateway.audited() == [("dunning_policy.set", "org_1")]


def test_a_backoff_policy_keeps_its_factor_as_text(gateway):
    gateway.payments.answer("SetDunningPolicy", pb.SetDunningPolicyResponse(policy=OWN, own=True))
    gateway.http.put(POLICY, headers=ADMIN, json={"max_attempts": 4, "base_seconds": 3600, "factor": "1.5",
                                                  "cap_seconds": 86400})
    sent = gateway.payments.requests["SetDunningPolicy"][0].policy
    assert (sent.max_attempts, sent.base_seconds, sent.factor, sent.cap_seconds) == (4, 3600, "1.5", 86400)


def test_clearing_a_policy_answers_the_default(gateway):
    gateway.payments.answer("SetDunningPolicy", pb.SetDunningPolicyResponse(policy=DEFAULT, own=False))
    response = gateway.http.delete(POLICY, headers=ADMIN)
    assert response.status_code == 200 and response.json()["own"] is False
    sent = gateway.payments.requests["SetDunningPolicy"][0]
    assert sent.clear and not sent.HasField("policy")
    assert gateway.audited() == [("dunning_policy.clear", "org_1")]


@pytest.mark.parametrize(("body", "field"), [
    ({"retry_days": [1]}, "max_attempts"),
    ({"max_attempts": 3.0}, "max_attempts"),
    ({"max_attempts": "3"}, "max_attempts"),
    ({"max_attempts": 2**31}, "max_attempts"),  # would not fit the protobuf field
    ({"max_attempts": 1, "retry_days": [-1]}, "retry_days[0]"),
    ({"max_attempts": 1, "factor": 2}, "factor"),  # decimal text, as payments keeps it
    ({"max_attempts": 1, "base_seconds": 2**63}, "base_seconds"),
    ({"max_attempts": 1, "colour": "red"}, "colour"),
])
def test_a_policy_that_does_not_fit_is_400_before_payments_is_asked(gateway, body, field):
    response = gateway.http.put(POLICY, headers=ADMIN, json=body)
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert "SetDunningPolicy" not in gateway.payments.requests


@pytest.mark.parametrize(("theirs", "ours"), [("policy.retry_days", "retry_days"), ("policy.factor", "factor"),
                                              ("organisation_id", "organisation_id")])
def test_payments_refusals_name_the_fields_of_the_body(gateway, theirs, ours):
    gateway.payments.answer("SetDunningPolicy", InvalidArgument("must be between 1 and 10", field=theirs))
    response = gateway.http.put(POLICY, headers=ADMIN, json={"max_attempts": 1, "factor": "11"})
    assert response.status_code == 400 and response.json()["field"] == ours
    assert gateway.audited() == []


def test_an_unknown_organisation_is_404_and_payments_is_not_asked():
    gateway = Gateway()
    gateway.invoicing.answer("GetOrganisation", NotFound("no organisation with id 'org_9'"))
    for method in ("GET", "PUT", "DELETE"):
        response = gateway.http.request(method, "/api/v1/admin/organisations/org_9/dunning-policy", headers=ADMIN,
                                        json={"max_attempts": 1} if method == "PUT" else None)
        assert response.status_code == 404, (method, response.text)
    assert gateway.payments.requests == {} and gateway.audited() == []


def test_dunning_routes_need_the_admin_token_and_are_documented(gateway):
    for method, path in (("GET", "/api/v1/admin/invoices/inv_1/dunning"), ("GET", POLICY), ("PUT", POLICY),
                         ("DELETE", POLICY)):
        assert gateway.http.request(method, path).status_code == 401, (method, path)
    assert gateway.payments.requests == {}
    paths = gateway.http.get("/openapi.json").json()["paths"]
    for path, method in (("/api/v1/admin/invoices/{invoice_id}/dunning", "get"),
                         ("/api/v1/admin/organisations/{organisation_id}/dunning-policy", "get"),
                         ("/api/v1/admin/organisations/{organisation_id}/dunning-policy", "put"),
                         ("/api/v1/admin/organisations/{organisation_id}/dunning-policy", "delete")):
        operation = paths[path][method]
        assert operation["summary"] and operation["description"] and operation["tags"] == ["payments"]
        assert {"400", "401", "404"} <= set(operation["responses"]), (path, method)
