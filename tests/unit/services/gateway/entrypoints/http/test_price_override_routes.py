"""The price override routes in front of a fake invoicing stub: what each asks invoicing, what it answers, what it
audits (only what changed something), and invoicing's refusals and NOT_FOUND passed through."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

OVERRIDES = "/api/v1/admin/organisations/org_1/price-overrides"


def version(number: int, *, cleared: bool = False) -> pb.PriceOverride:
    terms = pb.PriceOverrideTerms(currency="INR") if cleared else pb.PriceOverrideTerms(
        currency="INR", base_fee="600", charges=[pb.PriceOverrideCharge(
            metric_code="api_calls", charge=pb.Charge(model=pb.CHARGE_MODEL_PER_UNIT, unit_price="0.02"))])
    return pb.PriceOverride(id=f"pov_{number}", organisation_id="org_1", plan_id="plan_1", plan_code="standard",
                            version=number, terms=terms, cleared=cleared)


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def test_setting_sends_the_prices_answers_the_version_and_is_audited(gateway):
    gateway.invoicing.answer("SetPriceOverride", pb.SetPriceOverrideResponse(price_override=version(1), created=True))
    response = gateway.http.put(f"{OVERRIDES}/standard", headers={**ADMIN, "Idempotency-Key": "k1"}, json={
        "base_fee": 600, "effective_date": "2026-11-01",
        "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.02"}}]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["version"], body["base_fee"], body["cleared"]) == (1, "600", False)
    assert body["charges"][0]["charge"]["unit_price"] == "0.02"
    request = gateway.invoicing.requests["SetPriceOverride"][0]
    assert (request.organisation_id, request.plan_code, request.effective_date, request.idempotency_key) == (
        "org_1", "standard", "2026-11-01", "k1")
    assert (request.terms.base_fee, request.terms.charges[0].charge.unit_price) == ("600", "0.02")
    assert gateway.audited() == [("price_override.set", "org_1")]


def test_a_replay_is_marked_and_not_audited_again(gateway):
    gateway.invoicing.answer("SetPriceOverride", pb.SetPriceOverrideResponse(price_override=version(1)))
    response = gateway.http.put(f"{OVERRIDES}/standard", headers=ADMIN, json={"base_fee": "600"})
    assert response.status_code == 200 and response.headers["Idempotent-Replayed"] == "true"
    assert gateway.audited() == []


def test_invoicings_refusal_names_the_field(gateway):
    gateway.invoicing.answer("SetPriceOverride", InvalidArgument("the last tier must be open-ended",
                                                                 field="charges[0].charge.tiers[0].up_to"))
    response = gateway.http.put(f"{OVERRIDES}/standard", headers=ADMIN, json={"charges": [
        {"metric_code": "api_calls", "charge": {"model": "graduated", "tiers": [{"up_to": "10", "unit_price": "1"}]}}]})
    assert response.status_code == 400 and response.json()["field"] == "charges[0].charge.tiers[0].up_to"
    assert gateway.audited() == []


def test_clearing_and_listing(gateway):
    gateway.invoicing.answer("DeletePriceOverride", pb.DeletePriceOverrideResponse(
        price_override=version(2, cleared=True), created=True), pb.DeletePriceOverrideResponse())
    response = gateway.http.delete(f"{OVERRIDES}/standard", headers=ADMIN, params={"effective_date": "2026-12-01"})
    assert response.status_code == 200 and response.json()["cleared"] and response.json()["base_fee"] is None
    assert gateway.invoicing.requests["DeletePriceOverride"][0].effective_date == "2026-12-01"
    assert gateway.audited() == [("price_override.clear", "org_1")]
    nothing = gateway.http.delete(f"{OVERRIDES}/standard", headers=ADMIN)
    assert nothing.status_code == 200 and nothing.json() is None

    gateway.invoicing.answer("ListPriceOverrides", pb.ListPriceOverridesResponse(
        price_overrides=[version(1), version(2, cleared=True)]))
    listed = gateway.http.get(OVERRIDES, headers=ADMIN, params={"plan_code": "standard"}).json()
    assert [(o["version"], o["cleared"]) for o in listed["data"]] == [(1, False), (2, True)]
    assert gateway.invoicing.requests["ListPriceOverrides"][0].plan_code == "standard"


def test_an_unknown_organisation_is_404_and_the_routes_need_the_admin_token(gateway):
    gateway.invoicing.answer("ListPriceOverrides", NotFound("no organisation with id 'org_1'"))
    assert gateway.http.get(OVERRIDES, headers=ADMIN).status_code == 404
    for method in ("PUT", "DELETE"):
        assert gateway.http.request(method, f"{OVERRIDES}/standard", json={}).status_code == 401
