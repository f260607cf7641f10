"""The staff write limit at the edge (access control, after authorisation): per credential, writes only, 429 with
Retry-After and the RateLimit fields, nothing done for a refused write; the store unreachable refuses writes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def new_user(gateway: Gateway, headers: dict[str, str], n: int):
    return gateway.http.post("/api/v1/admin/users", headers=headers,
                             json={"email": f"u{n}@example.com", "name": f"U {n}", "role": "viewer"})


def test_the_31st_write_in_a_burst_answers_429_and_does_nothing(gateway):
    for n in range(30):
        assert new_user(gateway, ADMIN, n).status_code == 201
    users, audited = len(gateway.users.rows), len(gateway.audit)
    refused = new_user(gateway, ADMIN, 30)
    assert refused.status_code == 429
    assert refused.json()["error"] == "resource_exhausted" and "30 a minute" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "2"
    assert refused.headers["RateLimit-Policy"] == '"staff-writes";q=30;w=60'
    assert refused.headers["RateLimit"].startswith('"staff-writes";r=0;t=')
    assert len(gateway.users.rows) == users and len(gateway.audit) == audited  # nothing written, nothing audited

    # Reads are not limited; after Retry-After one more write fits.
    assert gateway.http.get("/api/v1/admin/users", headers=ADMIN).status_code == 200
    gateway.rate_limits.now += timedelta(seconds=2)
    assert new_user(gateway, ADMIN, 31).status_code == 201
    assert new_user(gateway, ADMIN, 32).status_code == 429


def test_each_credential_has_its_own_budget_and_a_forbidden_write_costs_nothing(gateway):
    for n in range(30):
        assert new_user(gateway, ADMIN, n).status_code == 201
    assert new_user(gateway, ADMIN, 99).status_code == 429
    other = gateway.staff("admin")
    assert new_user(gateway, other, 100).status_code == 201
    viewer = gateway.staff("viewer")
    assert all(new_user(gateway, viewer, 200 + n).status_code == 403 for n in range(35))
    assert len(gateway.rate_limits.rows) == 2  # the two admins' keys; the viewer's refusals charged nothing


def test_the_limit_is_a_setting_and_zero_turns_it_off(gateway):
    gateway.app.state.settings = gateway.app.state.settings.model_copy(update={"admin_write_limit_per_minute": 0})
    assert all(new_user(gateway, ADMIN, n).status_code == 201 for n in range(40))
    gateway.app.state.settings = gateway.app.state.settings.model_copy(update={"admin_write_limit_per_minute": 2})
    gateway.rate_limits.rows.clear()
    assert [new_user(gateway, ADMIN, 100 + n).status_code for n in range(3)] == [201, 201, 429]


def test_writes_are_refused_with_503_when_the_store_cannot_be_reached(gateway):
    async def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("no database")

    gateway.rate_limits.check = unreachable
    answer = new_user(gateway, ADMIN, 1)
    assert answer.status_code == 503 and answer.json()["error"] == "unavailable"
    assert not gateway.users.rows and not gateway.audit
    assert gateway.http.get("/api/v1/admin/users", headers=ADMIN).status_code == 200
