"""Plans, versions, subscriptions and exchange rates through the in-process gateway to the real invoicing
service: exact decimals, idempotent writes with an audit trail, and bad input refused as 400 naming the body's
field, with nothing stored."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from devstack.demo import DemoData
from devstack.demo_catalog import EXPORT_EVENTS_SEED, ensure_demo_catalog, load_catalog
from devstack.demo_usage import demo_events
from services.invoicing.adapters.tables import plan_versions, plans
from tests.integration.gateway.billing_setup import organisation
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually

PER_CALL = {"metric_code": "api_calls", "display_name": "API calls",
            "charge": {"model": "per_unit", "unit_price": "0.10"}}
JSON = {"content-type": "application/json"}


def code() -> str:
    return f"plan-{secrets.token_hex(4)}"


def plan_body(**terms) -> dict:
    return {"code": code(), "name": "Standard", "terms": {"currency": "INR", "base_fee": "999", "charges": [PER_CALL],
                                                         **terms}}


async def count(invoicing, table) -> int:
    async with invoicing.engine.connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


async def test_catalog_routes_need_the_admin_token(gateway_url, key_holder):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        for method, path in (("POST", "/api/v1/admin/plans"), ("GET", "/api/v1/admin/plans"),
                             ("GET", "/api/v1/admin/subscriptions"), ("POST", "/api/v1/admin/exchange-rates"),
                             ("GET", "/api/v1/admin/plan-versions/pv_x")):
            for headers in ({}, {"Authorization": f"Bearer {key_holder.api_key}"}):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)


async def test_a_plan_keeps_json_numbers_exact_and_comes_back_as_it_was_sent(admin_http):
    plan_code = code()
    # JSON numbers, not strings: 0.1 must arrive as 0.1, not as the binary float 0.1000000000000000055...
    body = (f'{{"code": "{plan_code}", "name": "Graduated", "terms": {{"currency": "INR", "base_fee": 999.00, '
            '"charges": [{"metric_code": "api_calls", "charge": {"model": "graduated", "tiers": ['
            '{"up_to": 1e3, "unit_price": 0.1, "flat_fee": 0}, {"up_to": null, "unit_price": 0.0000025}]}}], '
            '"quotas": [{"metric_code": "api_calls", "limit": 100000, "cap": "soft"}]}}')
    created = await admin_http.post("/api/v1/admin/plans", content=body, headers=JSON)
    assert created.status_code == 201, created.text
    plan = created.json()
    assert plan["id"] and plan["code"] == plan_code and plan["latest_version"]["version"] == 1
    terms = plan["latest_version"]["terms"]
    assert terms["base_fee"] == "999.00"
    assert terms["charges"][0]["charge"] == {
        "model": "graduated",
        "tiers": [{"up_to": "1000", "unit_price": "0.1", "flat_fee": "0"},
                  {"up_to": None, "unit_price": "0.0000025", "flat_fee": "0"}],
        "free_units": "0",  # stored terms state their defaults
    }
    assert terms["quotas"] == [{"metric_code": "api_calls", "limit": "100000", "cap": "soft", "grace_percent": None,
                               "grace_hours": 0}]
    assert terms["gst_rate"] == "18"  # the default, stated
    assert (await admin_http.get(f"/api/v1/admin/plans/{plan['id']}")).json() == plan
    by_code = (await admin_http.get("/api/v1/admin/plans", params={"code": plan_code})).json()
    assert by_code == {"data": [plan], "next_page_token": ""}
    version = plan["latest_version"]
    assert (await admin_http.get(f"/api/v1/admin/plan-versions/{version['id']}")).json() == version

    # The terms as returned are valid terms to send back: unchanged they are refused as no change at all ...
    same = await admin_http.post(f"/api/v1/admin/plans/{plan['id']}/versions", json={"terms": terms, "reason": "r"})
    assert same.status_code == 409 and same.json()["field"] == "terms"
    # ... and with one edit they become version 2, the rest as it was.
    edited = {**terms, "base_fee": "1099"}
    again = await admin_http.post(f"/api/v1/admin/plans/{plan['id']}/versions", json={"terms": edited, "reason": "r"})
    assert again.status_code == 201 and again.json()["terms"] == edited and again.json()["version"] == 2
    latest = (await admin_http.get(f"/api/v1/admin/plans/{plan['id']}")).json()["latest_version"]
    assert latest["id"] == again.json()["id"]


async def test_create_plan_is_idempotent_by_key_and_audited_once(admin_http):
    body = plan_body()
    headers = {"Idempotency-Key": f"create-{body['code']}"}
    first = await admin_http.post("/api/v1/admin/plans", json=body, headers=headers)
    again = await admin_http.post("/api/v1/admin/plans", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers.get("Idempotent-Replayed") == "true"
    taken = await admin_http.post("/api/v1/admin/plans", json=body)  # same code, no key: a second plan
    assert taken.status_code == 409 and taken.json()["field"] == "code"
    audit = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
    assert [e["action"] for e in audit if e["resource_id"] == first.json()["id"]] == ["plan.create"]


def _graduated(*tiers: dict) -> dict:
    return {"metric_code": "api_calls", "charge": {"model": "graduated", "tiers": list(tiers)}}


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"charges": [_graduated({"up_to": "100", "unit_price": "1"}, {"up_to": "50", "unit_price": "1"},
                                 {"unit_price": "1"})]}, "terms.charges[0].charge.tiers[1].up_to"),
        ({"charges": [_graduated({"up_to": "100"}, {}, {"up_to": "500"})]}, "terms.charges[0].charge.tiers[2]"),
        ({"charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "-0.10"}}]},
         "terms.charges[0].charge.unit_price"),
        ({"base_fee": -999}, "terms.base_fee"),
        ({"currency": "XYZ"}, "terms.currency"),
        ({"quotas": [{"metric_code": "llm_tokens", "limit": "10", "cap": "hard"}]}, "terms.quotas[0].metric_code"),
        ({"charges": [PER_CALL, PER_CALL]}, "terms.charges[1].metric_code"),
        # Caught by the gateway before invoicing sees it.
        ({"charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": True}}]},
         "terms.charges[0].charge.unit_price"),
        ({"charges": [{"metric_code": "api_calls", "charge": {"model": "tiered"}}]}, "terms.charges[0].charge.model"),
        ({"quotas": [{"metric_code": "api_calls", "limit": "10", "cap": "maybe"}]}, "terms.quotas[0].cap"),
        ({"billing_interval": "week"}, "terms.billing_interval"),
        ({"billing_interval": "quarter", "annual_discount_percent": "10"}, "terms.annual_discount_percent"),
        ({"billing_interval": "year", "annual_discount_percent": "101"}, "terms.annual_discount_percent"),
    ],
)
async def test_bad_terms_are_400_naming_the_body_field_and_store_nothing(admin_http, invoicing, terms, field):
    before = (await count(invoicing, plans), await count(invoicing, plan_versions))
    body = plan_body(**terms)
    response = await admin_http.post("/api/v1/admin/plans", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field, response.json()
    assert response.json()["detail"].startswith(f"{field}: ")
    assert (await count(invoicing, plans), await count(invoicing, plan_versions)) == before
    assert (await admin_http.get("/api/v1/admin/plans", params={"code": body["code"]})).json()["data"] == []


async def test_an_annual_plan_states_its_interval_timing_and_discount_and_a_monthly_one_its_defaults(admin_http):
    annual = await admin_http.post("/api/v1/admin/plans", json=plan_body(
        base_fee="10000", billing_interval="year", base_fee_timing="in_advance", annual_discount_percent="10"))
    assert annual.status_code == 201, annual.text
    terms = annual.json()["latest_version"]["terms"]
    assert (terms["billing_interval"], terms["base_fee_timing"], terms["annual_discount_percent"]) == (
        "year", "in_advance", "10")
    monthly = (await admin_http.post("/api/v1/admin/plans", json=plan_body())).json()["latest_version"]["terms"]
    assert (monthly["billing_interval"], monthly["base_fee_timing"], monthly["annual_discount_percent"]) == (
        "month", "in_arrears", None)


async def test_bad_terms_of_a_new_version_are_named_the_same_way(admin_http):
    plan = (await admin_http.post("/api/v1/admin/plans", json=plan_body())).json()
    response = await admin_http.post(f"/api/v1/admin/plans/{plan['id']}/versions",
                                     json={"terms": {"currency": "INR", "base_fee": "-1"}, "reason": "r"})
    assert response.status_code == 400 and response.json()["field"] == "terms.base_fee"
    versions = (await admin_http.get(f"/api/v1/admin/plans/{plan['id']}/versions")).json()["data"]
    assert [v["version"] for v in versions] == [1]
    missing = await admin_http.post("/api/v1/admin/plans/plan_missing/versions",
                                    json={"terms": {"currency": "INR"}, "reason": "r"})
    assert missing.status_code == 404


async def test_subscription_lifecycle(admin_http, invoicing):
    standard = (await admin_http.post("/api/v1/admin/plans", json=plan_body())).json()
    enterprise = (await admin_http.post("/api/v1/admin/plans", json=plan_body(base_fee="49999"))).json()
    organisation_id = await organisation(admin_http, invoicing, since=datetime(2026, 9, 15, tzinfo=UTC))

    body = {"organisation_id": organisation_id, "plan_code": standard["code"], "start_date": "2026-10-01"}
    headers = {"Idempotency-Key": f"subscribe-{organisation_id}"}
    created = await admin_http.post("/api/v1/admin/subscriptions", json=body, headers=headers)
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["state"] == "active" and subscription["billing_anchor_day"] == 1
    assert subscription["plan_version_id"] == standard["latest_version"]["id"]
    # 1 October 00:00 in Kolkata.
    assert [(p["plan_version_id"], p["starts_at"], p["ends_at"]) for p in subscription["phases"]] == [
        (standard["latest_version"]["id"], "2026-09-30T18:30:00Z", None)]
    replay = await admin_http.post("/api/v1/admin/subscriptions", json=body, headers=headers)
    assert replay.json()["id"] == subscription["id"] and replay.headers["Idempotent-Replayed"] == "true"
    second = await admin_http.post("/api/v1/admin/subscriptions", json=body)
    assert second.status_code == 409 and second.json()["field"] == "organisation_id"

    listed = (await admin_http.get("/api/v1/admin/subscriptions", params={"organisation_id": organisation_id})).json()
    assert [s["id"] for s in listed["data"]] == [subscription["id"]]

    change = {"plan_code": enterprise["code"], "effective_date": "2026-10-16"}
    path = f"/api/v1/admin/subscriptions/{subscription['id']}"
    changed = await admin_http.post(f"{path}/change-plan", json=change)
    assert changed.status_code == 200, changed.text
    assert [(p["plan_version_id"], p["starts_at"], p["ends_at"]) for p in changed.json()["phases"]] == [
        (standard["latest_version"]["id"], "2026-09-30T18:30:00Z", "2026-10-15T18:30:00Z"),
        (enterprise["latest_version"]["id"], "2026-10-15T18:30:00Z", None)]
    repeat = await admin_http.post(f"{path}/change-plan", json=change)
    assert repeat.headers.get("Idempotent-Replayed") == "true" and repeat.json() == changed.json()

    cancelled = await admin_http.post(f"{path}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_at_period_end"] is True
    assert cancelled.json()["ends_at"] is not None
    assert (await admin_http.get(path)).json() == cancelled.json()

    audit = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
    actions = [e["action"] for e in audit if e["resource_id"] == subscription["id"]]
    assert sorted(actions) == ["subscription.cancel", "subscription.change_plan", "subscription.create"]


async def test_a_subscription_cannot_start_before_its_organisation_exists(admin_http, invoicing):
    plan = (await admin_http.post("/api/v1/admin/plans", json=plan_body())).json()
    organisation_id = await organisation(admin_http, invoicing)  # created today
    response = await admin_http.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_code": plan["code"], "start_date": "2020-01-01"})
    assert response.status_code == 400 and response.json()["field"] == "start_date"
    listed = (await admin_http.get("/api/v1/admin/subscriptions", params={"organisation_id": organisation_id})).json()
    assert listed["data"] == []
    unknown = await admin_http.post("/api/v1/admin/subscriptions", json={
        "organisation_id": "org_missing", "plan_code": plan["code"]})
    assert unknown.status_code == 404
    bad_date = await admin_http.post("/api/v1/admin/subscriptions", json={
        "organisation_id": organisation_id, "plan_code": plan["code"], "start_date": "2026-02-30"})
    assert bad_date.status_code == 400 and bad_date.json()["field"] == "start_date"


async def test_exchange_rates(admin_http):
    # A pair of its own, so other tests' rates do not show in the list; the rate as a JSON number.
    body = ('{"base_currency": "EUR", "quote_currency": "JPY", "rate": 162.125, "source": "ECB reference rate", '
            '"effective_at": "2026-06-15T12:00:00Z"}')
    first = await admin_http.post("/api/v1/admin/exchange-rates", content=body, headers=JSON)
    assert first.status_code == 201, first.text
    rate = first.json()
    assert (rate["rate"], rate["source"], rate["effective_at"]) == ("162.125", "ECB reference rate",
                                                                     "2026-06-15T12:00:00Z")
    same = json.loads(body, parse_float=str)
    again = await admin_http.post("/api/v1/admin/exchange-rates", json=same)
    assert again.json()["id"] == rate["id"] and again.headers["Idempotent-Replayed"] == "true"
    clash = await admin_http.post("/api/v1/admin/exchange-rates", json={**same, "rate": "163"})
    assert clash.status_code == 409
    listed = (await admin_http.get("/api/v1/admin/exchange-rates",
                                   params={"base_currency": "EUR", "quote_currency": "JPY"})).json()["data"]
    assert [r["id"] for r in listed] == [rate["id"]]
    unknown = await admin_http.post("/api/v1/admin/exchange-rates", json={**same, "base_currency": "ABC"})
    assert unknown.status_code == 400 and unknown.json()["field"] == "base_currency"
    audit = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 100})).json()
    assert [e["action"] for e in audit if e["resource_id"] == rate["id"]] == ["exchange_rate.create"]


async def test_the_sample_catalog_and_demo_subscriptions_are_accepted_and_idempotent(
    gateway_url, admin_http, invoicing
):
    catalog = load_catalog()
    suffix = secrets.token_hex(3)
    for plan in catalog["plans"]:  # plan codes are global: these are this test's own
        plan["code"] = f"{plan['code']}-{suffix}"
    demo_organisation = await organisation(admin_http, invoicing)
    demo = DemoData(demo_organisation, "prj_unused", "key_unused", "bk_unused")

    def run():
        return ensure_demo_catalog(gateway_url, GATEWAY_ADMIN_TOKEN, demo, lambda _: None, catalog=catalog,
                                   demo_plan=f"standard-{suffix}", export_plan=f"enterprise-{suffix}")

    first = await asyncio.to_thread(run)
    second = await asyncio.to_thread(run)
    assert second == first and first.notes == []
    for plan in catalog["plans"]:
        found = (await admin_http.get("/api/v1/admin/plans", params={"code": plan["code"]})).json()["data"]
        assert found and found[0]["latest_version"]["version"] == 1, plan["code"]
    subscription = (await admin_http.get(f"/api/v1/admin/subscriptions/{first.subscription_id}")).json()
    assert subscription["organisation_id"] == demo_organisation and subscription["state"] == "active"
    export = (await admin_http.get(f"/api/v1/admin/organisations/{first.export_organisation_id}")).json()
    assert (export["billing_currency"], export["country"], export["gstin"]) == ("USD", "US", "")
    rates = (await admin_http.get("/api/v1/admin/exchange-rates",
                                  params={"base_currency": "INR", "quote_currency": "USD"})).json()["data"]
    assert any(r["rate"] == "0.011834" and r["source"] == "demo" for r in rates)

    # The export organisation's events went in with a key that is revoked now; its projected invoice prices them
    # in USD, zero-rated, with every Enterprise charge on it.
    assert first.export_events_accepted == len(demo_events(datetime.now(UTC), seed=EXPORT_EVENTS_SEED)) > 0
    projects = (await admin_http.get("/api/v1/admin/projects",
                                     params={"organisation_id": first.export_organisation_id})).json()["data"]
    keys = (await admin_http.get("/api/v1/admin/api-keys", params={"project_id": projects[0]["id"]})).json()["data"]
    assert {k["state"] for k in keys} == {"revoked"}

    sent = demo_events(datetime.now(UTC), seed=EXPORT_EVENTS_SEED)
    api_calls = sum(1 for event in sent if event["metricName"] == "api_calls")

    async def usage() -> dict:
        return (await admin_http.get("/api/v1/admin/usage", params={
            "organisation_id": first.export_organisation_id, "metric": "api_calls",
            "from": (datetime.now(UTC) - timedelta(days=4)).isoformat()})).json()

    await eventually(usage, lambda body: body["rows"] and body["rows"][0]["value"] == str(api_calls),
                     what="the export organisation's API calls in metering")
    # Its projected invoice is in USD, zero-rated, with every Enterprise charge on it (priced from the start of
    # its subscription: today, the day it was created).
    path = f"/api/v1/admin/organisations/{first.export_organisation_id}/projected-invoice"
    invoice = (await admin_http.get(path)).json()
    assert (invoice["currency"], invoice["tax_regime"], invoice["tax_minor"]) == ("USD", "export", 0)
    assert (invoice["exchange_rate"]["base_currency"], invoice["exchange_rate"]["quote_currency"]) == ("INR", "USD")
    assert {line["metric_code"] for line in invoice["lines"]} == {"", "api_calls", "llm_tokens", "storage_gb",
                                                                  "payments_volume"}
    assert "minimum_spend" in {line["kind"] for line in invoice["lines"]}  # the committed LLM spend
