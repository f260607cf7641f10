"""Demo data for the first start: one organisation, one project and an API key, created through the gateway's
admin REST API exactly as an operator would, so the first screen of the dashboard has something on it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack import console
from devstack.admin_http import admin_client
from devstack.console import Reporter
from devstack.errors import DevstackError
from devstack.state import write_private

GSTIN_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def gstin_check_character(first14: str) -> str:
    """The 15th character of a GSTIN: the standard mod-36 checksum over the first 14 characters.

    Characters are weighted alternately 1 and 2; each product contributes quotient + remainder by 36.
    """
    if len(first14) != 14:
        raise ValueError("a GSTIN checksum is computed over exactly 14 characters")
    total = 0
    for position, character in enumerate(first14.upper()):
        product = GSTIN_ALPHABET.index(character) * (1 if position % 2 == 0 else 2)
        total += product // 36 + product % 36
    return GSTIN_ALPHABET[(36 - total % 36) % 36]


# Karnataka (state 29), a made-up PAN, entity 1, "Z", and a correct check character.
DEMO_GSTIN = "29ABCDE1234F1Z" + gstin_check_character("29ABCDE1234F1Z")

DEMO_ORGANISATION: dict[str, Any] = {
    "name": "Acme Demo Pvt Ltd",
    "billing_email": "billing@acme.example",
    "billing_currency": "INR",
    "country": "IN",
    "state_code": "29",
    "gstin": DEMO_GSTIN,
    "timezone": "Asia/Kolkata",
    # An e-invoice names the buyer's address and PIN (docs/india.md).
    "billing_address": "12 Brigade Road\nBengaluru 560025",
}
DEMO_PROJECT_NAME = "demo"
DEMO_KEY_NAME = "demo key"


class DemoDataError(DevstackError):
    """The gateway refused or failed a demo-data request; the message has the status and body."""


@dataclass(frozen=True)
class DemoData:
    """What the operator needs to try the platform: ids and the one-time API key secret."""

    organisation_id: str
    project_id: str
    api_key_id: str
    api_key: str
    api_key_prefix: str = ""

    def save(self, path: Path) -> None:
        """Write to ``path`` readable by the owner only: it holds a live API key secret."""
        write_private(path, json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> DemoData | None:
        """The demo data saved by an earlier start, or None if missing or unreadable."""
        try:
            raw = json.loads(path.read_text())
            return cls(
                **{field: str(raw[field]) for field in ("organisation_id", "project_id", "api_key_id", "api_key")},
                api_key_prefix=str(raw.get("api_key_prefix", "")),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def ensure_demo_data(
    gateway_url: str,
    admin_token: str,
    state_file: Path,
    say: Reporter = console.say,
    *,
    transport: httpx.BaseTransport | None = None,
) -> DemoData:
    """Return the demo data, creating it when ``state_file`` is missing or names an organisation that is gone.

    Raises :class:`DemoDataError` if the gateway refuses a request (the caller decides whether that is fatal).
    ``transport`` replaces the network (tests).
    """
    headers = {"Authorization": f"Bearer {admin_token}"}
    with admin_client(gateway_url, headers, timeout=15.0, transport=transport) as client:
        saved = DemoData.load(state_file)
        if saved is not None:
            response = client.get(f"/api/v1/admin/organisations/{saved.organisation_id}")
            if response.status_code == 200:
                say(f"demo data present (organisation {saved.organisation_id}); keeping it")
                return saved
            if response.status_code != 404:
                raise DemoDataError(_describe("GET organisation", response))
            say(f"demo organisation {saved.organisation_id} no longer exists; creating demo data again")
        say("creating demo data: organisation, project and API key")
        organisation = _create_organisation(client, say)
        project = _post(
            client, "/api/v1/admin/projects", {"organisation_id": organisation["id"], "name": DEMO_PROJECT_NAME}
        )
        key = _post(client, "/api/v1/admin/api-keys", {"project_id": project["id"], "name": DEMO_KEY_NAME})
        if not key.get("secret"):
            raise DemoDataError(f"POST /api/v1/admin/api-keys returned no 'secret': {key}")
    demo = DemoData(
        organisation_id=str(organisation["id"]),
        project_id=str(project["id"]),
        api_key_id=str(key["id"]),
        api_key=str(key["secret"]),
        api_key_prefix=str(key.get("prefix", "")),
    )
    demo.save(state_file)
    say(f"demo data created (organisation {demo.organisation_id}); saved to {state_file}")
    return demo


def _create_organisation(client: httpx.Client, say: Reporter) -> dict[str, Any]:
    response = client.post("/api/v1/admin/organisations", json=DEMO_ORGANISATION)
    if response.status_code == 400 and _error_field(response) == "gstin":
        # The checksum above is the standard one; if invoicing still disagrees, an organisation without a
        # GSTIN (an unregistered buyer) is valid and keeps the demo going.
        console.warn(f"the gateway rejected demo GSTIN {DEMO_GSTIN}: {response.text.strip()}; creating it without one")
        response = client.post(
            "/api/v1/admin/organisations", json={k: v for k, v in DEMO_ORGANISATION.items() if k != "gstin"}
        )
    return _created("POST /api/v1/admin/organisations", response)


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return _created(f"POST {path}", client.post(path, json=body))


def _created(what: str, response: httpx.Response) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise DemoDataError(_describe(what, response))
    try:
        body = response.json()
    except ValueError:
        raise DemoDataError(f"{what} answered {response.status_code} with a body that is not JSON") from None
    if not isinstance(body, dict) or "id" not in body:
        raise DemoDataError(f"{what} answered {response.status_code} without an 'id': {body}")
    return body


def _error_field(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("field") if isinstance(body, dict) else None


def _describe(what: str, response: httpx.Response) -> str:
    return f"{what} -> HTTP {response.status_code}: {response.text.strip()[:500]}"
