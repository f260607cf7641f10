"""The audit trail against the real gateway and its PostgreSQL schema: entries carry role, source address, reason
and a before/after summary; they are filtered and exported as JSON lines; and nobody can change or remove one (the
gateway's own database connection included)."""

from __future__ import annotations

import json
import secrets

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from billing_runtime.database import async_url


async def test_role_changes_are_recorded_with_role_source_and_before_after(admin_http):
    user = (await admin_http.post("/api/v1/admin/users", json={
        "email": f"audit-{secrets.token_hex(4)}@example.com", "name": "A", "role": "viewer"})).json()
    await admin_http.patch(f"/api/v1/admin/users/{user['id']}", json={"role": "operator"})

    entries = (await admin_http.get("/api/v1/admin/audit-log", params={"resource_id": user["id"]})).json()
    assert [e["action"] for e in entries] == ["user.role:viewer->operator", "user.create:viewer"]
    change = entries[0]
    assert (change["actor"], change["role"], change["source_ip"]) == ("admin-token", "admin", "127.0.0.1")
    assert (change["before"], change["after"]) == ({"role": "viewer"}, {"role": "operator"})

    by_prefix = (await admin_http.get("/api/v1/admin/audit-log", params={"action": "user.role:",
                                                                          "limit": 500})).json()
    assert change["id"] in {e["id"] for e in by_prefix}
    assert all(e["action"].startswith("user.role:") for e in by_prefix)


async def test_the_export_is_json_lines_oldest_first(admin_http):
    for _ in range(3):
        await admin_http.post("/api/v1/admin/users", json={
            "email": f"export-{secrets.token_hex(4)}@example.com", "name": "E", "role": "viewer"})
    exported = await admin_http.get("/api/v1/admin/audit-log/export", params={"action": "user.create:"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert len(lines) >= 3 and [e["id"] for e in lines] == sorted(e["id"] for e in lines)
    resumed = await admin_http.get("/api/v1/admin/audit-log/export",
                                   params={"action": "user.create:", "after_id": lines[-2]["id"]})
    assert [json.loads(line)["id"] for line in resumed.text.splitlines()] == [lines[-1]["id"]]


async def test_bounds_of_the_filters_are_refused_with_400(admin_http):
    assert (await admin_http.get("/api/v1/admin/audit-log", params={"before_id": 2**63})).status_code == 400
    assert (await admin_http.get("/api/v1/admin/audit-log", params={"actor": "x" * 201})).status_code == 400


@pytest.mark.parametrize("statement", [
    "UPDATE gateway.audit_log SET actor = 'someone-else'",
    "DELETE FROM gateway.audit_log",
    "TRUNCATE gateway.audit_log",
])
async def test_nobody_can_change_or_remove_an_entry(admin_http, database_url, statement):
    await admin_http.post("/api/v1/admin/users", json={
        "email": f"append-{secrets.token_hex(4)}@example.com", "name": "P", "role": "viewer"})
    # The same database and role the gateway itself connects with.
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(sa.text("SELECT count(*) FROM gateway.audit_log"))).scalar_one()
            await conn.commit()
            with pytest.raises(DBAPIError, match="append-only"):
                async with conn.begin():
                    await conn.execute(sa.text(statement))
            after = (await conn.execute(sa.text("SELECT count(*) FROM gateway.audit_log"))).scalar_one()
            assert after == before > 0
            changed = (await conn.execute(sa.text(
                "SELECT count(*) FROM gateway.audit_log WHERE actor = 'someone-else'"))).scalar_one()
            assert changed == 0
    finally:
        await engine.dispose()


async def test_the_cli_lists_and_exports_the_log(admin_http, gateway_url):
    from tests.integration.gateway.test_cli_metering import billing

    user = (await admin_http.post("/api/v1/admin/users", json={
        "email": f"cli-{secrets.token_hex(4)}@example.com", "name": "C", "role": "viewer"})).json()
    code, out = await billing(gateway_url, "audit", "list", "--resource-id", user["id"], "--json")
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["user.create:viewer"]
    code, out = await billing(gateway_url, "audit", "export", "--action", "user.create:")
    assert code == 0
    exported = [json.loads(line) for line in out.splitlines()]
    assert user["id"] in {e["resource_id"] for e in exported}
    assert [e["id"] for e in exported] == sorted(e["id"] for e in exported)
