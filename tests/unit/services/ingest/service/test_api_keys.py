"""API key use cases against in-memory repositories: minting shows the secret once and stores its hash,
revoking happens once, verification refuses without saying which part was wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing_runtime.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from services.ingest.adapters import messages
from services.ingest.domain.api_key import ApiKeyState, matches
from services.ingest.service import api_keys, projects
from services.ingest.service.api_keys import CreateApiKey
from services.ingest.service.projects import CreateProject
from tests.unit.services.ingest.service.fakes import FakeOrganisations, FakeOutbox, FakeUnitOfWork, Tables

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def tables() -> Tables:
    return Tables()


@pytest.fixture
async def project(tables):
    made, _ = await projects.create_project(FakeUnitOfWork(tables), FakeOutbox(), FakeOrganisations("org_1"),
                                            CreateProject("org_1", "web"))
    tables.outbox.clear()
    return made


def uow(tables: Tables) -> FakeUnitOfWork:
    return FakeUnitOfWork(tables, clock=lambda: NOW)


async def test_a_key_is_minted_stored_as_a_hash_and_announced_without_its_secret(tables, project):
    key, secret = await api_keys.create_api_key(uow(tables), FakeOutbox(), CreateApiKey(project.id, " ci "), NOW)
    assert key.name == "ci" and key.project_id == project.id and secret.startswith(f"{key.prefix}_")
    assert tables.api_keys == {key.id: key} and secret not in repr(key) and matches(key, secret)
    [(subject, event_id, message)] = tables.outbox
    assert subject == messages.API_KEY_CREATED and message == messages.api_key_created(event_id, key, NOW)
    assert secret not in str(message)


async def test_a_key_for_an_unknown_project_rolls_back(tables):
    transaction = uow(tables)
    with pytest.raises(InvalidArgument) as raised:
        await api_keys.create_api_key(transaction, FakeOutbox(), CreateApiKey("prj_01KNOSUCHPROJECT0000000000"), NOW)
    assert raised.value.field == "project_id" and transaction.rollbacks == 1
    assert (tables.api_keys, tables.outbox) == ({}, [])


async def test_revoking_twice_keeps_the_first_revocation_and_announces_it_once(tables, project):
    key, secret = await api_keys.create_api_key(uow(tables), FakeOutbox(), CreateApiKey(project.id), NOW)
    tables.outbox.clear()
    revoked = await api_keys.revoke_api_key(uow(tables), FakeOutbox(), key.id, NOW)
    again = await api_keys.revoke_api_key(uow(tables), FakeOutbox(), key.id, NOW + timedelta(hours=1))
    assert revoked.revoked_at == NOW and again == revoked
    assert [subject for subject, _, _ in tables.outbox] == [messages.API_KEY_REVOKED]
    with pytest.raises(PermissionDenied, match="revoked"):
        await api_keys.verify_api_key(uow(tables), secret, NOW)
    with pytest.raises(NotFound):
        await api_keys.revoke_api_key(uow(tables), FakeOutbox(), "key_01KNOSUCHKEY00000000000000", NOW)


async def test_verification_finds_the_project_or_refuses_alike(tables, project):
    key, secret = await api_keys.create_api_key(uow(tables), FakeOutbox(), CreateApiKey(project.id), NOW)
    assert await api_keys.verify_api_key(uow(tables), secret, NOW) == (project, key)
    wrong_secret = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for presented in ("not-a-key", wrong_secret, "bk_ZZZZZZZZ_" + "a" * 32):
        with pytest.raises(Unauthenticated, match="malformed or unknown"):
            await api_keys.verify_api_key(uow(tables), presented, NOW)


async def test_an_expired_key_is_refused(tables, project):
    expires = NOW + timedelta(days=1)
    key, secret = await api_keys.create_api_key(uow(tables), FakeOutbox(), CreateApiKey(project.id, "", expires), NOW)
    assert key.state(NOW) is ApiKeyState.ACTIVE
    with pytest.raises(PermissionDenied, match="expired"):
        await api_keys.verify_api_key(uow(tables), secret, expires)


async def test_keys_are_listed_per_project_page_by_page(tables, project):
    made = [(await api_keys.create_api_key(uow(tables), FakeOutbox(), CreateApiKey(project.id, f"k{n}"), NOW))[0]
            for n in range(3)]
    first, token = await api_keys.list_api_keys(uow(tables), project.id, 2, "")
    rest, last = await api_keys.list_api_keys(uow(tables), project.id, 2, token)
    assert first + rest == sorted(made, key=lambda k: k.id) and last == ""
    assert await api_keys.list_api_keys(uow(tables), "prj_01KOTHERPROJECT00000000000", 0, "") == ([], "")
