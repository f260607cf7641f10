"""Demo catalog: the sample plans and rates, the demo subscription and the export organisation, created once
however often `make run` starts, through a fake gateway that behaves like the real one for repeats."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import pytest

from devstack.demo import DemoData, DemoDataError
from devstack.demo_catalog import (
    CATALOG_FILE,
    EXPORT_EVENTS_SEED,
    EXPORT_ORGANISATION,
    content_key,
    ensure_demo_catalog,
    load_catalog,
    subscription_start,
)
from devstack.demo_usage import DEMO_METRICS, demo_events

DEMO = DemoData("org_demo", "prj_1", "key_1", "bk_demo_secret")
TODAY = date(2026, 11, 21)


class FakeGateway:
    """Plans by idempotency key and code, organisations and projects by key, subscriptions per organisation,
    events stored once per (project, event id) and refused with a revoked key."""

    def __init__(self) -> None:
        self.plans: dict[str, dict] = {}  # code -> plan
        self.plan_keys: dict[str, str] = {}  # idempotency key -> code
        self.versions: dict[str, list[dict]] = {}  # plan id -> version bodies
        self.version_keys: set[str] = set()
        self.rates: dict[tuple, str] = {}
        self.organisations = {"org_demo": {"id": "org_demo", "timezone": "Asia/Kolkata",
                                           "created_at": "2026-11-20T20:00:00Z"}}  # 21 Nov 01:30 in Kolkata
        self.organisation_keys: dict[str, str] = {}
        self.subscriptions: list[dict] = []
        self.metric_keys: list[str] = []
        self.metrics: list[dict] = []
        self.projects: dict[str, dict] = {}  # idempotency key -> project
        self.keys: dict[str, str] = {}  # key id -> "active" / "revoked"
        self.secrets: dict[str, tuple[str, str]] = {}  # secret -> (key id, project id)
        self.event_ids: dict[str, set[str]] = {}  # project -> event ids stored
        self.event_bodies: list[list[dict]] = []
        self.alert_rules: dict[str, dict] = {}  # idempotency key -> rule

    def _events(self, request: httpx.Request, body: list[dict]) -> httpx.Response:
        key_id, project = self.secrets[request.headers["authorization"].removeprefix("Bearer ")]
        if self.keys[key_id] != "active":
            return httpx.Response(403, json={"error": "permission_denied", "detail": "revoked"})
        self.event_bodies.append(body)
        stored = self.event_ids.setdefault(project, set())
        new = [e for e in body if e["idempotencyKey"] not in stored]
        stored.update(e["idempotencyKey"] for e in body)
        return httpx.Response(202, json={"accepted": len(new), "duplicates": len(body) - len(new), "rejected": 0,
                                         "results": []})

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/events":
            return self._events(request, json.loads(request.content))
        assert request.headers["authorization"] == "Bearer admin-token"
        path, method = request.url.path, request.method
        body = json.loads(request.content) if request.content else None
        key = request.headers.get("idempotency-key", "")
        if (method, path) == ("POST", "/api/v1/admin/plans"):
            if key in self.plan_keys:
                return httpx.Response(201, json=self.plans[self.plan_keys[key]])
            if body["code"] in self.plans:
                return httpx.Response(409, json={"error": "already_exists", "detail": "code taken", "field": "code"})
            plan = {"id": f"plan_{body['code']}", "code": body["code"], "terms": body["terms"]}
            self.plans[body["code"]], self.plan_keys[key] = plan, body["code"]
            return httpx.Response(201, json=plan)
        if (method, path) == ("GET", "/api/v1/admin/plans"):
            plan = self.plans.get(request.url.params["code"])
            return httpx.Response(200, json={"data": [plan] if plan else [], "next_page_token": ""})
        if method == "POST" and path.endswith("/versions"):
            if key not in self.version_keys:
                self.version_keys.add(key)
                self.versions.setdefault(path.split("/")[-2], []).append(body)
            return httpx.Response(201, json={"id": "pv_new"})
        if (method, path) == ("POST", "/api/v1/admin/exchange-rates"):
            pair = (body["base_currency"], body["quote_currency"], body["effective_at"])
            if self.rates.setdefault(pair, body["rate"]) != body["rate"]:
                return httpx.Response(409, json={"error": "already_exists", "detail": "another rate"})
            return httpx.Response(201, json={"id": f"fx_{len(self.rates)}", **body})
        if (method, path) == ("POST", "/api/v1/admin/organisations"):
            assert key, "the export organisation needs an idempotency key"
            if key not in self.organisation_keys:
                organisation_id = f"org_{len(self.organisations)}"
                self.organisations[organisation_id] = {"id": organisation_id, **body,
                                                       "created_at": "2026-11-21T15:00:00Z"}
                self.organisation_keys[key] = organisation_id
            return httpx.Response(201, json=self.organisations[self.organisation_keys[key]])
        if method == "GET" and path.startswith("/api/v1/admin/organisations/"):
            organisation = self.organisations.get(path.rsplit("/", 1)[1])
            return httpx.Response(200 if organisation else 404, json=organisation or {"error": "not_found"})
        if (method, path) == ("GET", "/api/v1/admin/subscriptions"):
            mine = [s for s in self.subscriptions if s["organisation_id"] == request.url.params["organisation_id"]]
            return httpx.Response(200, json={"data": mine, "next_page_token": ""})
        if (method, path) == ("POST", "/api/v1/admin/subscriptions"):
            subscription = {"id": f"sub_{len(self.subscriptions) + 1}", "state": "active", **body}
            self.subscriptions.append(subscription)
            return httpx.Response(201, json=subscription)
        if (method, path) == ("POST", "/api/v1/admin/projects"):
            project = self.projects.setdefault(key, {"id": f"prj_{len(self.projects) + 1}", **body})
            return httpx.Response(201, json=project)
        if (method, path) == ("POST", "/api/v1/admin/api-keys"):
            key_id = f"key_{len(self.keys) + 1}"
            self.keys[key_id] = "active"
            self.secrets[f"bk_secret_{key_id}"] = (key_id, body["project_id"])
            return httpx.Response(201, json={"id": key_id, "secret": f"bk_secret_{key_id}"})
        if method == "POST" and path.endswith("/revoke"):
            self.keys[path.split("/")[-2]] = "revoked"
            return httpx.Response(200, json={"id": path.split("/")[-2], "state": "revoked"})
        if (method, path) == ("POST", "/api/v1/admin/alert-rules"):
            rule = self.alert_rules.setdefault(key, {"id": f"alr_{len(self.alert_rules) + 1}", **body})
            return httpx.Response(201, json=rule)
        if (method, path) == ("POST", "/api/v1/admin/metrics"):
            self.metric_keys.append(key)
            self.metrics.append(body)
            return httpx.Response(201, json={"id": "met_1", **body})
        return httpx.Response(404, json={"error": "not_found", "detail": f"{method} {path}"})


NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def _run(gateway: FakeGateway, **kwargs):
    return ensure_demo_catalog("http://gateway.test", "admin-token", DEMO, lambda _: None, today=TODAY, now=NOW,
                               transport=httpx.MockTransport(gateway.handle), **kwargs)


def test_the_sample_catalog_has_free_standard_and_enterprise_over_demo_metrics():
    catalog = load_catalog()
    assert [p["code"] for p in catalog["plans"]] == ["free", "standard", "enterprise"]
    demo_codes = {m["code"] for m in DEMO_METRICS}
    for plan in catalog["plans"]:
        charged = {c["metric_code"] for c in plan["terms"]["charges"]}
        assert charged <= demo_codes, plan["code"]  # only metrics the demo defines and sends events for
        assert {q["metric_code"] for q in plan["terms"]["quotas"]} <= charged  # no quota without a charge
    by_code = {p["code"]: p["terms"] for p in catalog["plans"]}
    assert (by_code["free"]["base_fee"], by_code["standard"]["base_fee"], by_code["enterprise"]["base_fee"]) == (
        "0", "999", "49999")
    assert {q["cap"] for q in by_code["free"]["quotas"]} == {"hard"}
    assert {q["cap"] for q in by_code["standard"]["quotas"]} == {"soft"}
    models = {c["metric_code"]: c["charge"]["model"] for c in by_code["enterprise"]["charges"]}
    assert models["api_calls"] == "volume" and models["payments_volume"] == "percentage"
    assert any("minimum_amount" in c["charge"] for c in by_code["enterprise"]["charges"])
    pairs = {(r["base_currency"], r["quote_currency"]) for r in catalog["exchange_rates"]}
    assert pairs == {("USD", "INR"), ("INR", "USD")}  # INR plans billed to the USD organisation need INR->USD


def test_the_catalog_file_has_no_json_numbers_with_fractions():
    # Prices are decimal strings, as a reader copying the file into a request should write them.
    parsed = json.loads(CATALOG_FILE.read_text(),
                        parse_float=lambda text: pytest.fail(f"a JSON float in the catalog: {text}"))
    assert parsed["plans"]


def test_first_start_creates_everything_and_a_second_start_nothing_more():
    gateway = FakeGateway()
    first = _run(gateway)
    assert first.plans == {"free": "plan_free", "standard": "plan_standard", "enterprise": "plan_enterprise"}
    demo_subscription, export_subscription = gateway.subscriptions
    # The first of November in Kolkata is before the organisation existed (20 Nov 20:00 UTC = 21 Nov local).
    assert demo_subscription == {"id": "sub_1", "state": "active", "organisation_id": "org_demo",
                                 "plan_code": "standard", "start_date": "2026-11-21"}
    export = gateway.organisations[first.export_organisation_id]
    assert (export["billing_currency"], export["country"]) == ("USD", "US") and export["name"] == EXPORT_ORGANISATION[
        "name"]
    assert export_subscription["plan_code"] == "enterprise" and export_subscription["start_date"] == "2026-11-21"
    assert [m["code"] for m in gateway.metrics] == [m["code"] for m in DEMO_METRICS]
    assert all(m["organisation_id"] == first.export_organisation_id for m in gateway.metrics)

    # The export organisation's usage went in through its own project, with a key revoked straight after.
    assert first.export_events_accepted == len(demo_events(NOW, seed=EXPORT_EVENTS_SEED))
    assert [p["organisation_id"] for p in gateway.projects.values()] == [first.export_organisation_id]
    assert set(gateway.keys.values()) == {"revoked"}

    second = _run(gateway)
    assert second == first and second.export_events_accepted == 0  # the same event ids: duplicates here
    assert gateway.event_bodies[0] == gateway.event_bodies[1] and len(gateway.projects) == 1
    assert len(gateway.plans) == 3 and len(gateway.subscriptions) == 2 and gateway.versions == {}
    assert len(gateway.organisations) == 2 and len(gateway.rates) == 2
    assert gateway.metric_keys[:4] == gateway.metric_keys[4:]  # the same keys: metering replays them
    [rule] = gateway.alert_rules.values()  # one rule, made once: the second start replays its key
    assert (rule["organisation_id"], rule["basis"], rule["levels"]) == ("org_demo", "quota_percent", ["80", "100"])


def test_an_edited_plan_becomes_a_new_version_once():
    gateway = FakeGateway()
    _run(gateway)
    catalog = load_catalog()
    catalog["plans"][1]["terms"]["base_fee"] = "1099"
    for _ in range(2):
        _run(gateway, catalog=catalog)
    assert list(gateway.versions) == ["plan_standard"]
    assert [v["terms"]["base_fee"] for v in gateway.versions["plan_standard"]] == ["1099"]


def test_a_subscribed_organisation_is_left_on_its_plan():
    gateway = FakeGateway()
    gateway.subscriptions.append({"id": "sub_old", "organisation_id": "org_demo", "state": "active",
                                  "plan_code": "free"})
    assert _run(gateway).subscription_id == "sub_old"
    assert [s["organisation_id"] for s in gateway.subscriptions] == ["org_demo", "org_1"]


def test_a_conflicting_stored_rate_is_kept_with_a_note():
    gateway = FakeGateway()
    gateway.rates[("USD", "INR", "2020-01-01T00:00:00Z")] = "83.00"
    assert len(_run(gateway).notes) == 1


def test_a_refusal_is_an_error_with_the_status():
    gateway = FakeGateway()
    del gateway.organisations["org_demo"]
    with pytest.raises(DemoDataError, match="HTTP 404"):
        _run(gateway)


@pytest.mark.parametrize(("created_at", "zone", "today", "start"), [
    ("2026-10-05T10:00:00Z", "Asia/Kolkata", date(2026, 11, 21), "2026-11-01"),  # created last month
    ("2026-11-20T20:00:00Z", "Asia/Kolkata", date(2026, 11, 21), "2026-11-21"),  # 01:30 on the 21st there
    ("2026-11-01T02:00:00Z", "America/New_York", date(2026, 11, 21), "2026-11-01"),  # 31 Oct 22:00 there
    ("2026-11-01T02:00:00Z", "Asia/Kolkata", date(2026, 11, 1), "2026-11-01"),
])
def test_subscription_start_is_the_month_start_unless_the_organisation_is_younger(created_at, zone, today, start):
    assert subscription_start(created_at, zone, today) == start


def test_content_keys_change_with_the_content_only():
    assert content_key("p", {"a": 1, "b": 2}) == content_key("p", {"b": 2, "a": 1})
    assert content_key("p", {"a": 1}) != content_key("p", {"a": 2})
