"""Staff users and tokens against the real gateway and its PostgreSQL schema: a token minted with the bootstrap
admin token acts with its user's role, rotation overlaps, revocation and disabling take effect at once, and the
audit log records the user as the actor."""

from __future__ import annotations

import secrets

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from billing_runtime.database import async_url


async def test_a_staff_token_acts_with_its_role_until_revoked(admin_http, gateway_url):
    email = f"operator-{secrets.token_hex(4)}@example.com"
    user = (await admin_http.post("/api/v1/admin/users", json={"email": email, "name": "Op", "role": "operator"}))
    assert user.status_code == 201, user.text
    user_id = user.json()["id"]
    minted = await admin_http.post(f"/api/v1/admin/users/{user_id}/tokens", json={"name": "ci"})
    assert minted.status_code == 201, minted.text
    token = minted.json()

    async with httpx.AsyncClient(
        base_url=gateway_url, headers={"Authorization": f"Bearer {token['secret']}"}, timeout=30
    ) as operator:
        me = (await operator.get("/api/v1/admin/me")).json()
        assert (me["actor"], me["role"]) == (f"user:{user_id}", "operator")
        assert (await operator.get("/api/v1/admin/organisations")).status_code == 200
        refused = await operator.post("/api/v1/admin/users", json={"email": "x@example.com", "name": "X",
                                                                    "role": "admin"})
        assert refused.status_code == 403
        listed = (await admin_http.get("/api/v1/admin/users", params={"page_size": 500})).json()["data"]
        assert "x@example.com" not in {u["email"] for u in listed}, "a refused write changes nothing"

        # The token's use is recorded, and the admin's writes name their actor in the audit log.
        tokens = (await admin_http.get(f"/api/v1/admin/users/{user_id}/tokens")).json()["data"]
        assert tokens[0]["last_used_at"] is not None and "secret" not in tokens[0]

        rotated = await admin_http.post(f"/api/v1/admin/tokens/{token['id']}/rotate", json={"overlap_seconds": 600})
        assert rotated.status_code == 201, rotated.text
        assert (await operator.get("/api/v1/admin/me")).status_code == 200, "the old token works for the overlap"

        disabled = await admin_http.patch(f"/api/v1/admin/users/{user_id}", json={"disabled": True})
        assert disabled.json()["disabled_at"] is not None
        assert (await operator.get("/api/v1/admin/me")).status_code == 401

    log = (await admin_http.get("/api/v1/admin/audit-log", params={"limit": 500})).json()
    mine = [(e["actor"], e["action"]) for e in log if e["resource_id"] in (user_id, token["id"])]
    assert ("admin-token", "user.disable") in mine and ("admin-token", "staff_token.rotate") in mine
    assert ("admin-token", "user.create:operator") in mine


async def test_a_revoked_token_is_refused_at_once(admin_http, gateway_url):
    user = (await admin_http.post("/api/v1/admin/users", json={
        "email": f"viewer-{secrets.token_hex(4)}@example.com", "name": "V", "role": "viewer"})).json()
    token = (await admin_http.post(f"/api/v1/admin/users/{user['id']}/tokens", json={"name": "t"})).json()
    headers = {"Authorization": f"Bearer {token['secret']}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as viewer:
        assert (await viewer.get("/api/v1/admin/me")).status_code == 200
        await admin_http.post(f"/api/v1/admin/tokens/{token['id']}/revoke")
        assert (await viewer.get("/api/v1/admin/me")).status_code == 401


async def test_a_token_limited_to_ranges_is_refused_from_elsewhere_and_keeps_them_when_rotated(admin_http, gateway_url):
    user = (await admin_http.post("/api/v1/admin/users", json={
        "email": f"ranged-{secrets.token_hex(4)}@example.com", "name": "R", "role": "viewer"})).json()
    elsewhere = (await admin_http.post(f"/api/v1/admin/users/{user['id']}/tokens",
                                       json={"name": "vpn only", "allowed_cidrs": ["10.20.0.0/16"]})).json()
    local = (await admin_http.post(f"/api/v1/admin/users/{user['id']}/tokens",
                                   json={"name": "here", "allowed_cidrs": ["127.0.0.1"]})).json()
    assert (elsewhere["allowed_cidrs"], local["allowed_cidrs"]) == (["10.20.0.0/16"], ["127.0.0.1/32"])
    bad = await admin_http.post(f"/api/v1/admin/users/{user['id']}/tokens",
                                json={"name": "x", "allowed_cidrs": ["10.0.0.0/8", "nope"]})
    assert bad.status_code == 400 and bad.json()["field"] == "allowed_cidrs[1]"

    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        refused = await client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {elsewhere['secret']}"})
        assert refused.status_code == 403 and "not allowed from this address" in refused.json()["detail"]
        allowed = await client.get("/api/v1/admin/me", headers={"Authorization": f"Bearer {local['secret']}"})
        assert allowed.status_code == 200

    rotated = (await admin_http.post(f"/api/v1/admin/tokens/{elsewhere['id']}/rotate", json={})).json()
    assert rotated["token"]["allowed_cidrs"] == ["10.20.0.0/16"]


@pytest.mark.parametrize(("role", "organisation"), [
    ("member", None), ("owner", "''"), ("viewer", "'org_x'"), ("admin", "'org_x'"), ("guest", None)])
async def test_the_database_keeps_staff_without_an_organisation_and_organisation_users_with_one(
        admin_http, database_url, role, organisation):
    """Gateway migration 0007's checks, whatever the code above them does: staff roles have no organisation,
    member and owner exactly one, and no other role exists."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            with pytest.raises(IntegrityError):
                async with conn.begin():
                    await conn.execute(sa.text(
                        "INSERT INTO gateway.users (id, email, name, role, organisation_id) VALUES "
                        f"('usr_check_{role}', '{role}-{secrets.token_hex(3)}@x.example', 'X', '{role}', "
                        f"{organisation or 'NULL'})"))
            async with conn.begin():  # and the one that fits is stored
                await conn.execute(sa.text(
                    "INSERT INTO gateway.users (id, email, name, role, organisation_id) VALUES "
                    f"('usr_fits_{secrets.token_hex(3)}', 'fits-{secrets.token_hex(3)}@x.example', 'X', 'member', "
                    "'org_x')"))
    finally:
        await engine.dispose()
