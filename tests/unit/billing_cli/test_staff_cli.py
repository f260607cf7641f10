"""billing users / billing tokens against a recorded gateway: the requests they send and what they print (a
token's secret once)."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

USER = {"id": "usr_1", "email": "asha@example.com", "name": "Asha", "role": "operator",
        "created_at": "2026-12-01T00:00:00Z", "disabled_at": None}
TOKEN = {"id": "tok_1", "user_id": "usr_1", "name": "ci", "prefix": "bt_AbCdEfGh", "state": "active",
         "created_at": "2026-12-01T00:00:00Z", "expires_at": None, "revoked_at": None, "last_used_at": None}


def test_users_create_update_and_me(gateway):
    gateway.answer(201, USER)
    code, out = billing("users", "create", "--email", "asha@example.com", "--name", "Asha", "--role", "operator")
    assert code == 0 and "usr_1" in out
    assert gateway.sent[0]["json"] == {"email": "asha@example.com", "name": "Asha", "role": "operator"}

    gateway.answer(200, {**USER, "role": "viewer", "disabled_at": "2026-12-02T00:00:00Z"})
    code, out = billing("users", "update", "usr_1", "--role", "viewer", "--disable")
    assert code == 0
    assert (gateway.sent[1]["method"], gateway.sent[1]["json"]) == ("PATCH", {"role": "viewer", "disabled": True})

    gateway.answer(200, {"actor": "user:usr_1", "role": "viewer", "permissions": ["read"],
                         "credential": "token:bt_AbCdEfGh"})
    code, out = billing("users", "me")
    assert code == 0 and "user:usr_1" in out and "viewer" in out


def test_tokens_print_their_secret_once_and_rotate_with_an_overlap(gateway):
    gateway.answer(201, {**TOKEN, "secret": "bt_AbCdEfGh_" + "x" * 32})
    code, out = billing("tokens", "create", "--user-id", "usr_1", "--name", "ci", "--allowed-cidr", "10.0.0.0/8")
    assert code == 0 and "bt_AbCdEfGh_" + "x" * 32 in out and "shown once" in out
    assert gateway.sent[0]["json"] == {"name": "ci", "allowed_cidrs": ["10.0.0.0/8"]}
    assert gateway.sent[0]["url"].endswith("/api/v1/admin/users/usr_1/tokens")

    gateway.answer(201, {"previous": {**TOKEN, "expires_at": "2026-12-01T01:00:00Z"},
                         "token": {**TOKEN, "id": "tok_2", "secret": "bt_ZyXwVuTs_" + "y" * 32}})
    code, out = billing("tokens", "rotate", "tok_1", "--overlap-seconds", "3600", "--json")
    assert code == 0 and json.loads(out)["token"]["id"] == "tok_2"
    assert gateway.sent[1]["json"] == {"overlap_seconds": 3600}

    gateway.answer(200, {**TOKEN, "state": "revoked"})
    code, out = billing("tokens", "revoke", "tok_1")
    assert code == 0 and "revoked" in out and gateway.sent[2]["url"].endswith("/api/v1/admin/tokens/tok_1/revoke")
