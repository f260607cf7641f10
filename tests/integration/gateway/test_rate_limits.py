"""Rate limits across two gateway processes sharing the database: the 31st staff write in a minute answers 429
with Retry-After whichever process gets it, and the refused write did nothing; reads are not limited; another
credential has its own budget. The sign-in throttle's state is shared the same way."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from billing_runtime.database import async_url
from billing_runtime.gcra import Rate
from billing_runtime.rate_limit_store import PostgresRateLimits
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.gateway.service.rate_limits import RateLimited, SharedLoginThrottle
from tests.conftest import running_service
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN

LIMIT = 30
INTERVAL = 60 / LIMIT


@pytest.fixture
async def two_gateways(database_url, nats_url, ingest, invoicing, metering, refused_address
                       ) -> AsyncIterator[tuple[str, str]]:
    settings = dict(
        admin_token=GATEWAY_ADMIN_TOKEN, http_port=0, ingest_address=ingest.address,
        invoicing_address=invoicing.address, metering_address=metering.address, payments_address=refused_address,
        notification_address=refused_address, admin_write_limit_per_minute=LIMIT,
    )
    async with running_service(GATEWAY, database_url, nats_url, **settings) as first, \
            running_service(GATEWAY, database_url, nats_url, **settings) as second:
        yield first.http_address, second.http_address


async def forget_limits(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("DELETE FROM gateway.rate_limits")
    finally:
        await connection.close()


def user(n: int, run: str) -> dict[str, str]:
    return {"email": f"limit-{run}-{n}@example.com", "name": f"Limit {n}", "role": "viewer"}


async def test_the_31st_write_in_a_minute_is_429_whichever_gateway_answers(two_gateways, database_url):
    urls = two_gateways
    admin = {"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=urls[0], headers=admin, timeout=30) as a, \
            httpx.AsyncClient(base_url=urls[1], headers=admin, timeout=30) as b:
        # A second credential (a staff user's token), made before the budgets are reset.
        staff = (await a.post("/api/v1/admin/users", json=user(0, "other") | {"role": "admin"})).json()
        secret = (await a.post(f"/api/v1/admin/users/{staff['id']}/tokens", json={"name": "t"})).json()["secret"]
        await forget_limits(database_url)

        run = secrets.token_hex(3)
        started = time.monotonic()
        answers = []
        for n in range(LIMIT + 1):  # alternating: a, b, a, b, ...
            answers.append(await (a, b)[n % 2].post("/api/v1/admin/users", json=user(n, run)))
        elapsed = time.monotonic() - started
        codes = [answer.status_code for answer in answers]
        # GCRA refills one write every 2 s: on a machine slow enough to take that long, one more fits.
        refills = math.floor(elapsed / INTERVAL)
        assert codes.count(201) >= LIMIT, codes
        if refills == 0:
            assert codes == [201] * LIMIT + [429], (codes, elapsed)
            refused = answers[-1]
            assert refused.json()["error"] == "resource_exhausted"
            assert 1 <= int(refused.headers["Retry-After"]) <= math.ceil(INTERVAL)
            assert refused.headers["RateLimit-Policy"] == f'"staff-writes";q={LIMIT};w=60'
            # The refused one wrote nothing, on either side.
            listed = (await b.get("/api/v1/admin/users", params={"page_size": 500})).json()["data"]
            emails = {u["email"] for u in listed}
            assert user(LIMIT, run)["email"] not in emails and user(LIMIT - 1, run)["email"] in emails
            # Further writes are refused by both processes; reads are not limited.
            assert (await a.post("/api/v1/admin/users", json=user(100, run))).status_code == 429
            assert (await b.post("/api/v1/admin/users", json=user(101, run))).status_code == 429
        assert (await a.get("/api/v1/admin/users")).status_code == 200
        assert (await b.get("/api/v1/admin/me")).status_code == 200

        # Another credential has its own budget.
        async with httpx.AsyncClient(base_url=urls[1], headers={"Authorization": f"Bearer {secret}"},
                                     timeout=30) as other:
            assert (await other.post("/api/v1/admin/users", json=user(200, run))).status_code == 201


async def test_concurrent_writes_on_both_gateways_admit_exactly_the_limit(two_gateways, database_url):
    await forget_limits(database_url)
    run = secrets.token_hex(3)
    admin = {"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=two_gateways[0], headers=admin, timeout=30) as a, \
            httpx.AsyncClient(base_url=two_gateways[1], headers=admin, timeout=30) as b:
        started = time.monotonic()
        answers = await asyncio.gather(*[(a, b)[n % 2].post("/api/v1/admin/users", json=user(n, run))
                                         for n in range(LIMIT + 10)])
        elapsed = time.monotonic() - started
    codes = [answer.status_code for answer in answers]
    assert set(codes) <= {201, 429}, codes
    assert LIMIT <= codes.count(201) <= LIMIT + math.floor(elapsed / INTERVAL), (codes, elapsed)


async def test_the_login_throttle_is_shared_through_the_database(two_gateways, database_url):
    """Two stores (two processes' worth) on one database: failures charged through one lock out the other."""
    engines = [create_async_engine(async_url(database_url)) for _ in range(2)]
    try:
        throttles = [SharedLoginThrottle(PostgresRateLimits(engine)) for engine in engines]
        email, source = f"guess-{secrets.token_hex(3)}@example.com", f"203.0.113.{secrets.randbelow(250)}"
        for n in range(5):
            await throttles[n % 2].check(source, email)
            await throttles[n % 2].failed(source, email)
        for throttle in throttles:
            with pytest.raises(RateLimited) as refused:
                await throttle.check(source, email)
            assert timedelta(minutes=2, seconds=50) < refused.value.decision.retry_after <= timedelta(minutes=3)
        await throttles[0].succeeded(source, email)
        with pytest.raises(RateLimited):  # the address stays locked out
            await throttles[1].check(source, email)
        await throttles[1].check("198.51.100.2", email)  # the account's failures are forgotten

        # The plain limit: one atomic statement per check, exact across stores.
        rate, key = Rate(3, timedelta(minutes=1)), f"test:{secrets.token_hex(3)}"
        decisions = await asyncio.gather(*[throttles[n % 2]._limits.check(key, rate) for n in range(8)])
        assert sum(d.allowed for d in decisions) == 3
        assert all(timedelta(0) < d.retry_after <= timedelta(seconds=20) for d in decisions if not d.allowed)
        assert await PostgresRateLimits(engines[0]).purge() >= 0
    finally:
        for engine in engines:
            await engine.dispose()


async def test_sign_in_is_locked_after_the_failures_whichever_gateway_answers(
    database_url, nats_url, ingest, invoicing, metering, refused_address
):
    settings = dict(
        admin_token=GATEWAY_ADMIN_TOKEN, http_port=0, ingest_address=ingest.address,
        invoicing_address=invoicing.address, metering_address=metering.address, payments_address=refused_address,
        notification_address=refused_address, login_failure_limit=3, cookie_secure=False,
    )
    admin = {"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}
    email = f"guessed-{secrets.token_hex(4)}@example.com"
    password = "correct horse battery staple"
    async with running_service(GATEWAY, database_url, nats_url, **settings) as first, \
            running_service(GATEWAY, database_url, nats_url, **settings) as second, \
            httpx.AsyncClient(base_url=first.http_address, timeout=30) as a, \
            httpx.AsyncClient(base_url=second.http_address, timeout=30) as b:
        await forget_limits(database_url)
        created = await a.post("/api/v1/admin/users", headers=admin,
                               json={"email": email, "name": "G", "role": "viewer", "password": password})
        assert created.status_code == 201, created.text
        wrong = [await (a, b)[n % 2].post("/api/v1/auth/login", json={"email": email, "password": f"wrong-{n}" * 3})
                 for n in range(3)]
        assert [r.status_code for r in wrong] == [401, 401, 401]
        locked = await b.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0, locked.text
        assert "set-cookie" not in locked.headers, "no session while locked, even with the right password"
    await forget_limits(database_url)
