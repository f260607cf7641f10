"""The entitlement override routes in front of a fake invoicing stub: what each asks invoicing, what it answers,
what it audits, and invoicing's refusals and NOT_FOUND passed through."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

OVERRIDES = "/api/v1/admin/organisations/org_1/entitlement-overrides"


def answer(**values: pb.EntitlementValue) -> dict:
    return {"entitlement_overrides": values}


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def test_listing_answers_numbers_tagged_and_the_rest_plain(gateway):
    gateway.invoicing.answer("ListEntitlementOverrides", pb.ListEntitlementOverridesResponse(**answer(
        sso=pb.EntitlementValue(bool_value=True), seats=pb.EntitlementValue(number_value="25"),
        support=pb.EntitlementValue(string_value="priority"))))
    response = gateway.http.get(OVERRIDES, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"organisation_id": "org_1",
                               "overrides": {"seats": {"number": "25"}, "sso": True, "support": "priority"}}
    assert gateway.invoicing.requests["ListEntitlementOverrides"][0].organisation_id == "org_1"


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        ('{"value": true}', pb.EntitlementValue(bool_value=True)),
        ('{"value": 0.1}', pb.EntitlementValue(number_value="0.1")),  # exact, not the binary float
        ('{"value": {"number": "12.50"}}', pb.EntitlementValue(number_value="12.50")),
        ('{"value": "priority"}', pb.EntitlementValue(string_value="priority")),
    ],
)
def test_setting_sends_the_value_and_is_audited(gateway, body, sent):
    gateway.invoicing.answer("SetEntitlementOverride", pb.SetEntitlementOverrideResponse(**answer(seats=sent)))
    response = gateway.http.put(f"{OVERRIDES}/seats", headers={**ADMIN, "content-type": "application/json"},
                                content=body)
    assert response.status_code == 200, response.text
    request = gateway.invoicing.requests["SetEntitlementOverride"][0]
    assert (request.organisation_id, request.feature, request.value) == ("org_1", "seats", sent)
    assert gateway.audited() == [("entitlement_override.set", "org_1")]


def test_a_body_without_a_value_is_refused_before_invoicing(gateway):
    response = gateway.http.put(f"{OVERRIDES}/seats", headers=ADMIN, json={"value": None})
    assert response.status_code in (400, 422) and "SetEntitlementOverride" not in gateway.invoicing.requests


def test_invoicings_refusal_names_the_field(gateway):
    gateway.invoicing.answer("SetEntitlementOverride", InvalidArgument("is not a feature key", field="feature"))
    response = gateway.http.put(f"{OVERRIDES}/Seats", headers=ADMIN, json={"value": 1})
    assert response.status_code == 400 and "feature" in response.text
    assert gateway.audited() == []


def test_deleting_answers_what_remains_and_is_audited(gateway):
    gateway.invoicing.answer("DeleteEntitlementOverride", pb.DeleteEntitlementOverrideResponse(
        **answer(sso=pb.EntitlementValue(bool_value=False))))
    response = gateway.http.delete(f"{OVERRIDES}/seats", headers=ADMIN)
    assert response.json() == {"organisation_id": "org_1", "overrides": {"sso": False}}
    request = gateway.invoicing.requests["DeleteEntitlementOverride"][0]
    assert (request.organisation_id, request.feature) == ("org_1", "seats")
    assert gateway.audited() == [("entitlement_override.delete", "org_1")]


def test_an_unknown_organisation_is_404(gateway):
    gateway.invoicing.answer("ListEntitlementOverrides", NotFound("no organisation with id 'org_1'"))
    assert gateway.http.get(OVERRIDES, headers=ADMIN).status_code == 404


def test_the_routes_need_the_admin_token(gateway):
    for method in ("GET", "PUT", "DELETE"):
        path = OVERRIDES if method == "GET" else f"{OVERRIDES}/sso"
        response = gateway.http.request(method, path, json={"value": True})
        assert response.status_code == 401, method
    assert gateway.invoicing.requests == {} or not any(gateway.invoicing.requests.values())


def test_openapi_documents_the_routes_with_their_response_model(gateway):
    schema = gateway.http.get("/openapi.json").json()
    route = schema["paths"]["/api/v1/admin/organisations/{organisation_id}/entitlement-overrides/{feature}"]
    assert set(route) == {"put", "delete"}
    assert route["put"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EntitlementOverrides"}
    number = schema["components"]["schemas"]["EntitlementNumber-Output"]
    assert number["properties"]["number"]["type"] == "string"  # a number comes back as {"number": "25"}
