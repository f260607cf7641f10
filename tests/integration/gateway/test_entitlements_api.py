"""Quota grace, the enforcement flag and entitlements in plan terms, and an organisation's entitlement overrides,
through the in-process gateway to the real invoicing service: the shapes sent and returned, bad input refused as
400 naming the body's field (or the path's), unknown organisations 404, writes audited."""

from __future__ import annotations

import secrets

import httpx

from billing.invoicing.v1 import invoicing_pb2 as pb
from tests.integration.gateway.billing_setup import organisation

PER_CALL = {"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.10"}}
MISSING = "org_01KNOSUCHORGANISATION00000"


def plan_body(**terms) -> dict:
    return {"code": f"plan-{secrets.token_hex(4)}", "name": "Gated",
            "terms": {"currency": "INR", "base_fee": "999", "charges": [PER_CALL], **terms}}


def overrides_path(organisation_id: str, feature: str = "") -> str:
    path = f"/api/v1/admin/organisations/{organisation_id}/entitlement-overrides"
    return f"{path}/{feature}" if feature else path


async def test_plan_terms_carry_grace_enforcement_and_entitlements_and_come_back_as_sent(admin_http):
    body = plan_body(
        quotas=[{"metric_code": "api_calls", "limit": "1000", "cap": "hard", "grace_percent": "12.5",
                 "grace_hours": 48}],
        enforce_quotas_at_ingest=True,
        entitlements={"sso": True, "seats": 10, "storage.gb": {"number": "0.5"}, "support": "priority",
                      "plan-tier": "10"},
    )
    created = await admin_http.post("/api/v1/admin/plans", json=body)
    assert created.status_code == 201, created.text
    terms = created.json()["latest_version"]["terms"]
    assert terms["quotas"] == body["terms"]["quotas"]
    assert terms["enforce_quotas_at_ingest"] is True
    assert terms["entitlements"] == {"plan-tier": "10", "seats": {"number": "10"}, "sso": True,
                                     "storage.gb": {"number": "0.5"}, "support": "priority"}
    # Sent back unchanged, they are the same terms: no new version.
    plan_id = created.json()["id"]
    same = await admin_http.post(f"/api/v1/admin/plans/{plan_id}/versions", json={"terms": terms, "reason": "r"})
    assert same.status_code == 409, same.text
    # A number where a string was is a change.
    edited = {**terms, "entitlements": {**terms["entitlements"], "plan-tier": 10}}
    again = await admin_http.post(f"/api/v1/admin/plans/{plan_id}/versions", json={"terms": edited, "reason": "r"})
    assert again.status_code == 201 and again.json()["terms"]["entitlements"]["plan-tier"] == {"number": "10"}


async def test_bad_grace_and_entitlements_are_400_naming_the_body_field(admin_http):
    cases = [
        ({"quotas": [{"metric_code": "api_calls", "limit": "10", "cap": "soft", "grace_percent": "5"}]},
         "terms.quotas[0].grace_percent"),
        ({"quotas": [{"metric_code": "api_calls", "limit": "10", "cap": "hard", "grace_hours": 24}]},
         "terms.quotas[0].grace_hours"),
        ({"entitlements": {"seats": {"number": "1e12"}}}, 'terms.entitlements["seats"]'),
        ({"entitlements": {"Seats": True}}, 'terms.entitlements["Seats"]'),
        ({"entitlements": {"support": "x" * 300}}, 'terms.entitlements["support"]'),
    ]
    for terms, field in cases:
        response = await admin_http.post("/api/v1/admin/plans", json=plan_body(**terms))
        assert response.status_code == 400 and response.json()["field"] == field, (terms, response.text)
    response = await admin_http.post("/api/v1/admin/plans", json=plan_body(entitlements={"seats": 1.5}))
    assert response.status_code == 201  # 1.5 read exactly from the JSON body: not a float
    assert response.json()["latest_version"]["terms"]["entitlements"] == {"seats": {"number": "1.5"}}


async def test_overrides_are_put_listed_deleted_and_audited(admin_http, invoicing, invoicing_stub):
    organisation_id = await organisation(admin_http, invoicing)
    first = await admin_http.put(overrides_path(organisation_id, "seats"), json={"value": 25})
    assert first.status_code == 200, first.text
    assert first.json() == {"organisation_id": organisation_id, "overrides": {"seats": {"number": "25"}}}
    second = await admin_http.put(overrides_path(organisation_id, "sso"), json={"value": True})
    assert second.json()["overrides"] == {"seats": {"number": "25"}, "sso": True}
    listed = await admin_http.get(overrides_path(organisation_id))
    assert listed.json() == second.json()
    # What metering will read.
    in_force = await invoicing_stub.GetPlanInForce(pb.GetPlanInForceRequest(organisation_id=organisation_id))
    assert dict(in_force.entitlement_overrides) == {"seats": pb.EntitlementValue(number_value="25"),
                                                    "sso": pb.EntitlementValue(bool_value=True)}
    deleted = await admin_http.delete(overrides_path(organisation_id, "seats"))
    assert deleted.status_code == 200 and deleted.json()["overrides"] == {"sso": True}
    audit = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
    mine = [entry["action"] for entry in audit if entry["resource_id"] == organisation_id]
    assert mine.count("entitlement_override.set") == 2 and mine.count("entitlement_override.delete") == 1


async def test_override_refusals(admin_http, invoicing, gateway_url):
    organisation_id = await organisation(admin_http, invoicing)
    bad_feature = await admin_http.put(overrides_path(organisation_id, "Seats"), json={"value": 1})
    assert bad_feature.status_code == 400 and bad_feature.json()["field"] == "feature"
    bad_value = await admin_http.put(overrides_path(organisation_id, "seats"), json={"value": {"number": "0.1234567"}})
    assert bad_value.status_code == 400 and bad_value.json()["field"] == "value"
    for method, path in (("GET", overrides_path(MISSING)), ("PUT", overrides_path(MISSING, "sso")),
                         ("DELETE", overrides_path(MISSING, "sso"))):
        response = await admin_http.request(method, path, json={"value": True} if method == "PUT" else None)
        assert response.status_code == 404, (method, response.text)
    async with httpx.AsyncClient(base_url=gateway_url) as anonymous:
        response = await anonymous.put(overrides_path(organisation_id, "sso"), json={"value": True})
        assert response.status_code == 401
    assert (await admin_http.get(overrides_path(organisation_id))).json()["overrides"] == {}
