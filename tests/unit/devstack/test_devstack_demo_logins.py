"""The dashboard's demo sign-ins: an owner of the demo organisation and an operator, created through the admin API
once, their passwords kept (mode 0600) and set again on a later start."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx

from devstack.demo_logins import CUSTOMER_EMAIL, OPERATOR_EMAIL, ensure_demo_logins


class FakeUsersApi:
    def __init__(self) -> None:
        self.users: dict[str, dict] = {}
        self.passwords: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer admin"
        if request.method == "GET":
            return httpx.Response(200, json={"data": list(self.users.values()), "next_page_token": ""})
        body = json.loads(request.content)
        if request.method == "POST":
            user = {"id": f"usr_{len(self.users) + 1}", "email": body["email"], "role": body["role"],
                    "organisation_id": body.get("organisation_id")}
            self.users[user["id"]] = user
            self.passwords[user["id"]] = body["password"]
            return httpx.Response(201, json=user)
        user_id = request.url.path.rsplit("/", 1)[-1]
        self.passwords[user_id] = body["password"]
        self.users[user_id]["role"] = body.get("role", self.users[user_id]["role"])
        return httpx.Response(200, json=self.users[user_id])


def test_demo_logins_are_made_once_and_keep_their_passwords(tmp_path: Path) -> None:
    api = FakeUsersApi()
    state = tmp_path / "demo-logins.json"
    transport = httpx.MockTransport(api)
    first = ensure_demo_logins("http://gw", "admin", "org_demo", state, lambda _: None, transport=transport)
    assert {u["email"]: (u["role"], u["organisation_id"]) for u in api.users.values()} == {
        CUSTOMER_EMAIL: ("owner", "org_demo"), OPERATOR_EMAIL: ("operator", None)}
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert json.loads(state.read_text()) == first

    again = ensure_demo_logins("http://gw", "admin", "org_demo", state, lambda _: None, transport=transport)
    assert again == first and len(api.users) == 2

    # A data directory from before the demo customer was an owner: made one on the next start.
    customer = next(u for u in api.users.values() if u["email"] == CUSTOMER_EMAIL)
    customer["role"] = "member"
    ensure_demo_logins("http://gw", "admin", "org_demo", state, lambda _: None, transport=transport)
    assert customer["role"] == "owner"
    assert sorted(api.passwords.values()) == sorted(login["password"] for login in first.values())
