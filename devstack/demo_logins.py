"""Demo sign-ins for the dashboard that `make run` prints: an owner of the demo organisation (the customer's
pages, plan changes and API keys included) and an operator (the operators' pages), made through the admin API
like any user. Their passwords are random per data directory, kept in ``<data dir>/demo-logins.json`` (mode
0600) and set again at every start."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx

from devstack import console
from devstack.admin_http import admin_client
from devstack.demo import DemoDataError
from devstack.state import write_private

CUSTOMER_EMAIL = "customer@acme.example"
OPERATOR_EMAIL = "operator@billing.example"


def ensure_demo_logins(gateway_url: str, admin_token: str, organisation_id: str, state_file: Path,
                       say=console.say, *, transport: httpx.BaseTransport | None = None) -> dict[str, dict[str, str]]:
    """``{"customer": {"email", "password"}, "operator": {...}}``, creating the users or setting their password
    (the one kept from an earlier start). ``transport`` replaces the network (tests)."""
    try:
        saved = json.loads(state_file.read_text())
    except (OSError, ValueError):
        saved = {}
    logins: dict[str, dict[str, str]] = {}
    headers = {"Authorization": f"Bearer {admin_token}"}
    with admin_client(gateway_url, headers, timeout=15.0, transport=transport) as client:
        existing = {u["email"]: u for u in client.get("/api/v1/admin/users", params={"page_size": 500})
                    .json().get("data", [])}
        for kind, email, role, extra in (
            ("customer", CUSTOMER_EMAIL, "owner", {"organisation_id": organisation_id}),
            ("operator", OPERATOR_EMAIL, "operator", {}),
        ):
            password = saved.get(kind, {}).get("password") or secrets.token_urlsafe(12)
            user = existing.get(email)
            if user is None:
                response = client.post("/api/v1/admin/users", json={
                    "email": email, "name": f"Demo {kind}", "role": role, "password": password, **extra})
            else:
                # The role too: a data directory from before the demo customer was an owner.
                response = client.patch(f"/api/v1/admin/users/{user['id']}", json={"password": password, "role": role})
            if response.status_code not in (200, 201):
                raise DemoDataError(f"demo {kind} login: {response.status_code} {response.text[:200]}")
            logins[kind] = {"email": email, "password": password}
    write_private(state_file, json.dumps(logins, indent=2) + "\n")
    say(f"demo dashboard logins ready (customer {CUSTOMER_EMAIL}, operator {OPERATOR_EMAIL}); saved to {state_file}")
    return logins
