"""TOTP secrets sealed at rest in ``gateway.users`` against PostgreSQL: what is stored is not the secret; a secret
stored in plain text before sealing existed still signs in and is sealed by the housekeeping; after a key rotation
the previous key still opens, the housekeeping moves every secret to the current key, and a secret no configured key
opens is named, left alone and refused clearly; the sign-in with a code works end to end throughout."""

from __future__ import annotations

import base64
import os
import secrets
import time

import pyotp
import pytest
import sqlalchemy as sa

from billing_runtime.ids import new_id
from services.gateway.adapters.secrets_keyring import SecretsKeyring, SecretUnreadable
from services.gateway.adapters.staff import GatewayUnitOfWork
from services.gateway.adapters.tables import users
from services.gateway.domain.access import Role
from services.gateway.service.sessions import reseal_totp_secrets
from tests.conftest import GATEWAY_SECRETS_KEY
from tests.integration.gateway.test_sessions import _login, _person

# The running gateway's key is the current one here too: resealing other tests' users changes nothing for it.
CURRENT = base64.urlsafe_b64decode(GATEWAY_SECRETS_KEY)
OLD, LOST = os.urandom(32), os.urandom(32)
GATEWAY_KEYRING = SecretsKeyring(CURRENT)


async def _user(engine, keyring: SecretsKeyring = GATEWAY_KEYRING) -> str:
    async with GatewayUnitOfWork(engine, keyring) as uow:
        user = await uow.users.add(user_id=new_id("usr"), email=f"totp-{secrets.token_hex(4)}@example.com",
                                   name="T", role=Role.VIEWER)
    assert user is not None
    return user.id


async def _stored(engine, user_id: str) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(users.c.totp_secret).where(users.c.id == user_id))).scalar_one()


async def _store_plain(engine, user_id: str, secret: str) -> None:
    """What a gateway from before sealing stored."""
    async with engine.begin() as conn:
        await conn.execute(sa.update(users).where(users.c.id == user_id).values(totp_secret=secret, totp_enabled=True))


async def _secret_of(engine, keyring: SecretsKeyring, user_id: str) -> str | None:
    async with GatewayUnitOfWork(engine, keyring) as uow:
        record = await uow.users.get_sign_in(user_id=user_id)
    assert record is not None
    return record.totp_secret


async def test_what_is_stored_is_sealed_and_opens_to_the_secret(gateway_engine):
    user, secret = await _user(gateway_engine), pyotp.random_base32()
    async with GatewayUnitOfWork(gateway_engine, GATEWAY_KEYRING) as uow:
        await uow.users.set_totp(user, secret=secret, enabled=False, last_step=None)
    stored = await _stored(gateway_engine, user)
    assert stored is not None and stored.startswith(GATEWAY_KEYRING.sealed_prefix) and secret not in stored
    assert await _secret_of(gateway_engine, GATEWAY_KEYRING, user) == secret


async def test_a_secret_stored_in_plain_text_is_read_and_then_sealed(gateway_engine):
    user, secret = await _user(gateway_engine), pyotp.random_base32()
    await _store_plain(gateway_engine, user, secret)
    assert await _secret_of(gateway_engine, GATEWAY_KEYRING, user) == secret

    resealed, unreadable = await reseal_totp_secrets(GatewayUnitOfWork(gateway_engine, GATEWAY_KEYRING))

    assert resealed >= 1 and user not in unreadable
    stored = await _stored(gateway_engine, user)
    assert stored is not None and stored.startswith(GATEWAY_KEYRING.sealed_prefix) and secret not in stored
    assert await _secret_of(gateway_engine, GATEWAY_KEYRING, user) == secret
    await reseal_totp_secrets(GatewayUnitOfWork(gateway_engine, GATEWAY_KEYRING))
    assert await _stored(gateway_engine, user) == stored, "a sealed secret is left as it is"


async def test_after_a_rotation_secrets_move_to_the_current_key_page_by_page_and_a_lost_key_is_named(gateway_engine):
    before_rotation = SecretsKeyring(OLD)
    rotated = SecretsKeyring(CURRENT, [OLD])
    moved = [await _user(gateway_engine) for _ in range(3)]
    lost = await _user(gateway_engine)
    secrets_ = {user: pyotp.random_base32() for user in [*moved, lost]}
    for user in moved:
        async with GatewayUnitOfWork(gateway_engine, before_rotation) as uow:
            await uow.users.set_totp(user, secret=secrets_[user], enabled=True, last_step=None)
    async with GatewayUnitOfWork(gateway_engine, SecretsKeyring(LOST)) as uow:
        await uow.users.set_totp(lost, secret=secrets_[lost], enabled=True, last_step=None)
    assert await _secret_of(gateway_engine, rotated, moved[0]) == secrets_[moved[0]], "the previous key still opens"

    # Pages of one user: the secret no key opens does not stop the pages after it.
    resealed, unreadable = await reseal_totp_secrets(GatewayUnitOfWork(gateway_engine, rotated), batch=1)

    assert resealed >= len(moved) and lost in unreadable
    for user in moved:
        assert (await _stored(gateway_engine, user) or "").startswith(rotated.sealed_prefix)
        assert await _secret_of(gateway_engine, GATEWAY_KEYRING, user) == secrets_[user], "the old key is not needed"
    assert (await _stored(gateway_engine, lost) or "").startswith("aesgcm1:"), "left as it was"
    with pytest.raises(SecretUnreadable, match=f"the TOTP secret of user {lost} sealed with key [0-9a-f]{{8}}, which "
                                               "is neither GATEWAY_SECRETS_KEY"):
        await _secret_of(gateway_engine, rotated, lost)


async def test_totp_sign_in_works_with_a_sealed_secret_and_with_one_from_before_sealing(admin_http, gateway_url,
                                                                                          gateway_engine):
    user = await _person(admin_http, "viewer")
    reply, browser = await _login(gateway_url, user["email"])
    async with browser:
        csrf = {"X-CSRF-Token": reply.json()["csrf_token"]}
        enrolment = (await browser.post("/api/v1/auth/totp", headers=csrf)).json()
        totp = pyotp.TOTP(enrolment["secret"])
        confirmed = await browser.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": totp.now()})
        assert confirmed.status_code == 204, confirmed.text
    stored = await _stored(gateway_engine, user["id"])
    assert stored is not None and stored.startswith(GATEWAY_KEYRING.sealed_prefix)
    assert enrolment["secret"] not in stored
    signed_in, client = await _login(gateway_url, user["email"], totp_code=totp.at(time.time() + 30))
    await client.aclose()
    assert signed_in.status_code == 200, signed_in.text

    # A user whose secret a gateway from before sealing stored in plain text signs in as before...
    legacy = await _person(admin_http, "viewer")
    totp = pyotp.TOTP(pyotp.random_base32())
    await _store_plain(gateway_engine, legacy["id"], totp.secret)
    signed_in, client = await _login(gateway_url, legacy["email"], totp_code=totp.now())
    await client.aclose()
    assert signed_in.status_code == 200, signed_in.text
    # ... and after the housekeeping sealed it.
    await reseal_totp_secrets(GatewayUnitOfWork(gateway_engine, GATEWAY_KEYRING))
    assert (await _stored(gateway_engine, legacy["id"]) or "").startswith(GATEWAY_KEYRING.sealed_prefix)
    signed_in, client = await _login(gateway_url, legacy["email"], totp_code=totp.at(time.time() + 30))
    await client.aclose()
    assert signed_in.status_code == 200, signed_in.text
