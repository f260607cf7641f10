"""Demo catalog for the first start: the sample plans (Free, Standard, Enterprise) and exchange rates of
``docs/examples/catalog.json``, the demo organisation on Standard, and a second organisation billed in USD outside
India on Enterprise (so the currency conversion and the zero-rated export invoice have something to show). All
through the gateway's admin REST API, as an operator would do it.

Idempotent across restarts: plans are created with an Idempotency-Key derived from their content (an edited plan
in the file becomes a new version on the next start), rates have a fixed effective time, the export organisation
has a fixed key, and an organisation that already has an active subscription is left on it. The export
organisation's events have fixed ids, so sending them again on the next start counts nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from devstack import console
from devstack.admin_http import admin_client
from devstack.console import Reporter
from devstack.demo import DemoData, DemoDataError
from devstack.demo_usage import DEMO_METRICS, demo_events

CATALOG_FILE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "catalog.json"
DEMO_PLAN = "standard"
EXPORT_PLAN = "enterprise"
EXPORT_ORGANISATION: dict[str, Any] = {
    "name": "Globex Corporation",
    "billing_email": "ap@globex.example",
    "billing_currency": "USD",
    "country": "US",
    "state_code": "",
    "gstin": "",
    "timezone": "America/New_York",
    "billing_address": "1 Globex Plaza\nNew York, NY 10001",
}
EXPORT_ORGANISATION_KEY = "demo-export-organisation"
EXPORT_PROJECT = "globex-demo"
EXPORT_EVENTS_SEED = 11  # another month of usage than the demo organisation's, from the same generator


@dataclass(frozen=True)
class DemoCatalog:
    plans: dict[str, str]  # code -> plan id
    exchange_rates: int
    subscription_id: str
    export_organisation_id: str
    export_subscription_id: str
    notes: list[str] = field(default_factory=list)
    # Events of the export organisation accepted by this start (a resent event is still counted once).
    export_events_accepted: int = field(default=0, compare=False)


def load_catalog(path: Path = CATALOG_FILE) -> dict[str, Any]:
    """The sample catalog: ``{"plans": [{"code", "name", "terms"}], "exchange_rates": [...]}``."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise DemoDataError(f"cannot read the sample catalog {path}: {error}") from None


def content_key(prefix: str, content: Any) -> str:
    """An Idempotency-Key that changes when the content does (and only then)."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f"{prefix}-{digest[:16]}"


def subscription_start(created_at: str, zone: str, today: date) -> str:
    """The first of the current month in the organisation's zone, but never before the day the organisation was
    created there (invoicing refuses a subscription that starts before its organisation exists)."""
    created = datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(ZoneInfo(zone)).date()
    return max(today.replace(day=1), created).isoformat()


class _Admin:
    """The admin API with the errors turned into DemoDataError (with status and body)."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201), key: str = "",
             **kwargs: Any) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else {}
        response = self.client.request(method, path, headers=headers, **kwargs)
        if response.status_code not in ok:
            raise DemoDataError(f"{method} {path} -> HTTP {response.status_code}: {response.text.strip()[:500]}")
        return response


def _ensure_plan(admin: _Admin, plan: dict[str, Any]) -> str:
    key = content_key(f"demo-plan-{plan['code']}", plan)
    response = admin.call("POST", "/api/v1/admin/plans", json=plan, key=key, ok=(200, 201, 409))
    if response.status_code != 409:
        return response.json()["id"]
    # The code exists under another key: the plan in the file changed since it was created. Its terms become a
    # new version (once: the key is the content's).
    found = admin.call("GET", "/api/v1/admin/plans", params={"code": plan["code"]}).json()["data"]
    if not found:
        raise DemoDataError(f"POST /api/v1/admin/plans said {plan['code']!r} exists, but it cannot be found")
    # 409 here: its latest version already has these terms (the plan was made another way, e.g. with the CLI).
    admin.call("POST", f"/api/v1/admin/plans/{found[0]['id']}/versions",
               json={"terms": plan["terms"], "reason": "the demo catalog changed"},
               key=content_key(f"demo-plan-version-{plan['code']}", plan), ok=(200, 201, 409))
    return found[0]["id"]


def _ensure_subscription(admin: _Admin, organisation: dict[str, Any], plan_code: str, today: date | None) -> str:
    """The organisation's active subscription, or a new one on ``plan_code`` from this month (in its zone)."""
    existing = admin.call("GET", "/api/v1/admin/subscriptions",
                          params={"organisation_id": organisation["id"]}).json()["data"]
    active = [s for s in existing if s["state"] == "active"]
    if active:
        return active[0]["id"]
    zone = organisation.get("timezone") or "UTC"
    start = subscription_start(organisation["created_at"], zone, today or today_in(zone))
    body = {"organisation_id": organisation["id"], "plan_code": plan_code, "start_date": start}
    return admin.call("POST", "/api/v1/admin/subscriptions", json=body,
                      key=f"demo-subscription-{organisation['id']}-{start}").json()["id"]


def _send_export_usage(admin: _Admin, organisation_id: str, now: datetime) -> int:
    """Send the export organisation's demo events through ``POST /api/v1/events`` as a client would: with a key
    minted for the purpose and revoked straight after, so no secret has to be kept between starts. Returns the
    number accepted."""
    project = admin.call("POST", "/api/v1/admin/projects", key="demo-export-project",
                         json={"organisation_id": organisation_id, "name": EXPORT_PROJECT}).json()
    key = admin.call("POST", "/api/v1/admin/api-keys",
                     json={"project_id": project["id"], "name": "demo sender (revoked after use)"}).json()
    try:
        response = admin.client.post("/api/v1/events", json=demo_events(now, seed=EXPORT_EVENTS_SEED),
                                     headers={"Authorization": f"Bearer {key['secret']}"})
    finally:
        admin.call("POST", f"/api/v1/admin/api-keys/{key['id']}/revoke")
    if response.status_code != 202:
        raise DemoDataError(f"POST /api/v1/events -> HTTP {response.status_code}: {response.text.strip()[:500]}")
    return response.json()["accepted"]


def ensure_demo_catalog(
    gateway_url: str,
    admin_token: str,
    demo: DemoData,
    say: Reporter = console.say,
    *,
    metrics: list[dict[str, Any]] | None = None,
    today: date | None = None,
    catalog: dict[str, Any] | None = None,
    demo_plan: str = DEMO_PLAN,
    export_plan: str = EXPORT_PLAN,
    now: datetime | None = None,
    transport: httpx.BaseTransport | None = None,
) -> DemoCatalog:
    """Create the sample plans and rates, subscribe the demo organisation to Standard, and set up the USD export
    organisation on Enterprise (with the demo ``metrics`` defined for it, and events for them sent as of ``now``).
    Each step finds what an earlier start made. ``today`` (default: today in each organisation's zone) decides the
    month subscriptions start in.

    Raises :class:`DemoDataError` if the gateway refuses a request. ``transport`` replaces the network (tests).
    """
    catalog = catalog or load_catalog()
    headers = {"Authorization": f"Bearer {admin_token}"}
    with admin_client(gateway_url, headers, timeout=30.0, transport=transport) as client:
        admin = _Admin(client)
        plans = {plan["code"]: _ensure_plan(admin, plan) for plan in catalog["plans"]}
        notes: list[str] = []
        for rate in catalog.get("exchange_rates", []):
            response = admin.call("POST", "/api/v1/admin/exchange-rates", json=rate, ok=(200, 201, 409))
            if response.status_code == 409:  # the same time with another rate: the stored one stands
                notes.append(f"{rate['base_currency']}->{rate['quote_currency']} at {rate['effective_at']} is "
                             f"already stored with another rate; kept it")
        organisation = admin.call("GET", f"/api/v1/admin/organisations/{demo.organisation_id}").json()
        subscription_id = _ensure_subscription(admin, organisation, demo_plan, today)
        # Warn the demo organisation at 80 % and 100 % of its plan's API-call quota (by email and webhook).
        alert_rule = admin.call("POST", "/api/v1/admin/alert-rules", key="demo-alert-rule-api-calls", json={
            "organisation_id": demo.organisation_id, "kind": "threshold", "name": "API calls against the quota",
            "metric_code": "api_calls", "basis": "quota_percent", "levels": ["80", "100"]}).json()["id"]

        export = admin.call("POST", "/api/v1/admin/organisations", json=EXPORT_ORGANISATION,
                            key=EXPORT_ORGANISATION_KEY).json()
        for metric in DEMO_METRICS if metrics is None else metrics:
            admin.call("POST", "/api/v1/admin/metrics", key=f"demo-export-metric-{metric['code']}",
                       json={"organisation_id": export["id"], **metric})
        export_subscription_id = _ensure_subscription(admin, export, export_plan, today)
        accepted = _send_export_usage(admin, export["id"], now or datetime.now(UTC))
    result = DemoCatalog(plans, len(catalog.get("exchange_rates", [])), subscription_id, export["id"],
                         export_subscription_id, notes, accepted)
    for note in notes:
        console.warn(note)
    say(f"demo catalog: plans {', '.join(plans)}; {result.exchange_rates} exchange rates; {demo.organisation_id} on "
        f"{demo_plan} ({subscription_id}, alert rule {alert_rule}); {export['id']} "
        f"({EXPORT_ORGANISATION['name']}, USD, export) on "
        f"{export_plan} ({accepted} events accepted). Try `billing invoices projected {export['id']}`")
    return result


def today_in(zone: str) -> date:
    """Today's date in an IANA zone (what 'the current month' means for an organisation)."""
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
