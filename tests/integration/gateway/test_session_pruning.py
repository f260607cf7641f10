"""Pruning ended sessions from ``gateway.sessions`` against PostgreSQL: sessions that ended (signed out, past their
lifetime, idle) more than the grace period ago are deleted and every other one stays; each transaction deletes a
bounded batch; rows another transaction holds are skipped, not waited for (several replicas prune at once); and a
running gateway prunes (and seals TOTP secrets stored in plain text) on its own."""

from __future__ import annotations

import asyncio
import base64
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client import REGISTRY

from billing_runtime.ids import new_id
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.gateway.adapters.secrets_keyring import SecretsKeyring
from services.gateway.adapters.staff import GatewayUnitOfWork
from services.gateway.adapters.tables import sessions as sessions_table
from services.gateway.adapters.tables import users
from services.gateway.domain.access import Role
from services.gateway.domain.sessions import Session, SessionPolicy
from services.gateway.service.sessions import prune_sessions
from tests.conftest import GATEWAY_SECRETS_KEY, running_service
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually

KEYRING = SecretsKeyring(base64.urlsafe_b64decode(GATEWAY_SECRETS_KEY))
POLICY = SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=12))
GRACE = timedelta(days=1)


async def _user(engine) -> str:
    async with GatewayUnitOfWork(engine, KEYRING) as uow:
        user = await uow.users.add(user_id=new_id("usr"), email=f"prune-{secrets.token_hex(4)}@example.com",
                                   name="P", role=Role.VIEWER)
    assert user is not None
    return user.id


def _session(user_id: str, *, created: datetime, last_seen: datetime | None = None,
             revoked: datetime | None = None, lifetime: timedelta = POLICY.lifetime) -> Session:
    return Session(id_hash=secrets.token_hex(32), user_id=user_id, csrf_hash=secrets.token_hex(32),
                   created_at=created, expires_at=created + lifetime, last_seen_at=last_seen or created,
                   revoked_at=revoked)


async def _add(engine, *rows: Session) -> None:
    async with GatewayUnitOfWork(engine, KEYRING) as uow:
        for row in rows:
            await uow.sessions.add(row)
            if row.revoked_at is not None:
                await uow.sessions.revoke(row.id_hash, row.revoked_at)


async def _left(engine, rows) -> set[str]:
    async with engine.connect() as conn:
        found = await conn.execute(sa.select(sessions_table.c.id_hash)
                                   .where(sessions_table.c.id_hash.in_([r.id_hash for r in rows])))
        return set(found.scalars())


async def test_sessions_ended_longer_ago_than_the_grace_go_and_every_other_one_stays(gateway_engine):
    now = datetime.now(UTC)
    user = await _user(gateway_engine)
    live = _session(user, created=now - timedelta(hours=1), last_seen=now - timedelta(minutes=1))
    signed_out_lately = _session(user, created=now - timedelta(hours=3), revoked=now - timedelta(hours=2))
    expired_lately = _session(user, created=now - POLICY.lifetime - timedelta(hours=1),
                              last_seen=now - timedelta(hours=1, minutes=10))
    idle_lately = _session(user, created=now - timedelta(hours=5), last_seen=now - timedelta(hours=4))
    signed_out_long_ago = _session(user, created=now - timedelta(days=3), revoked=now - timedelta(days=2))
    expired_long_ago = _session(user, created=now - timedelta(days=3), last_seen=now - timedelta(days=3) +
                                POLICY.lifetime - timedelta(minutes=1))
    # Its absolute end is still ahead: only its idle timeout ended it, two days ago.
    idle_long_ago = _session(user, created=now - timedelta(days=2, hours=1), last_seen=now - timedelta(days=2),
                             lifetime=timedelta(days=3))
    kept = [live, signed_out_lately, expired_lately, idle_lately]
    gone = [signed_out_long_ago, expired_long_ago, idle_long_ago]
    await _add(gateway_engine, *kept, *gone)
    assert all(s.ended_at(POLICY) < now - GRACE for s in gone)
    assert all(s.ended_at(POLICY) > now - GRACE for s in kept)

    pruned = await prune_sessions(GatewayUnitOfWork(gateway_engine, KEYRING), POLICY, GRACE, now)

    assert pruned >= len(gone)  # and whatever other tests' sessions had ended as long ago
    assert await _left(gateway_engine, kept + gone) == {s.id_hash for s in kept}
    again = await prune_sessions(GatewayUnitOfWork(gateway_engine, KEYRING), POLICY, GRACE, now)
    assert again == 0, "nothing left to do"


async def test_each_transaction_deletes_a_bounded_batch_and_skips_rows_another_one_holds(gateway_engine):
    now = datetime.now(UTC)
    user = await _user(gateway_engine)
    ended = [_session(user, created=now - timedelta(days=10, minutes=i), revoked=now - timedelta(days=9))
             for i in range(25)]
    await _add(gateway_engine, *ended)
    held = ended[:5]
    async with gateway_engine.connect() as other, other.begin():
        # Another replica's transaction holds five of them (as one deleting them would).
        await other.execute(sa.select(sessions_table.c.id_hash)
                            .where(sessions_table.c.id_hash.in_([s.id_hash for s in held])).with_for_update())
        async with asyncio.timeout(10), GatewayUnitOfWork(gateway_engine, KEYRING) as uow:
            assert await uow.sessions.prune(now - GRACE, POLICY.idle, 10) == 10
        assert len(await _left(gateway_engine, ended)) == 15
        async with asyncio.timeout(10):  # never waits for the held rows
            await prune_sessions(GatewayUnitOfWork(gateway_engine, KEYRING), POLICY, GRACE, now, batch=4)
        assert await _left(gateway_engine, ended) == {s.id_hash for s in held}
    await prune_sessions(GatewayUnitOfWork(gateway_engine, KEYRING), POLICY, GRACE, now, batch=4)
    assert await _left(gateway_engine, ended) == set()


def _pruned_total() -> float:
    return REGISTRY.get_sample_value("billing_gateway_sessions_pruned_total") or 0.0


async def _totp_secret(engine, user_id: str) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(users.c.totp_secret).where(users.c.id == user_id))).scalar_one()


async def test_a_running_gateway_does_its_housekeeping_at_start_up(gateway_engine, database_url, nats_url,
                                                                   refused_address):
    now = datetime.now(UTC)
    user = await _user(gateway_engine)
    signed_out = _session(user, created=now - timedelta(hours=2), revoked=now - timedelta(hours=1))
    live = _session(user, created=now)
    await _add(gateway_engine, signed_out, live)
    async with gateway_engine.begin() as conn:  # a TOTP secret stored in plain text, from before sealing
        await conn.execute(sa.update(users).where(users.c.id == user).values(totp_secret="JBSWY3DPEHPK3PXP"))
    before = _pruned_total()
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=refused_address, metering_address=refused_address, invoicing_address=refused_address,
        payments_address=refused_address, notification_address=refused_address,
        session_prune_grace_seconds=60, housekeeping_interval_seconds=0.2,
    ):
        await eventually(lambda: _left(gateway_engine, [signed_out, live]), lambda left: left == {live.id_hash},
                         what="the signed-out session to be pruned")
    assert _pruned_total() >= before + 1
    sealed = await _totp_secret(gateway_engine, user)
    assert sealed is not None and sealed.startswith(KEYRING.sealed_prefix)

