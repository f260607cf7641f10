"""Minting, listing, revoking and verifying API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from billing_runtime.ids import new_id
from services.ingest.adapters import messages
from services.ingest.domain import api_key as keys
from services.ingest.domain.project import Project
from services.ingest.service.ports import EventOutbox, IngestTransaction


@dataclass(frozen=True)
class CreateApiKey:
    project_id: str
    name: str = ""
    expires_at: datetime | None = None


async def create_api_key(
    uow: IngestTransaction, outbox: EventOutbox, command: CreateApiKey, now: datetime
) -> tuple[keys.ApiKey, str]:
    """Mint a key; returns (key, secret). The secret is never stored or returned again."""
    name = keys.validate_key_request(command.name, command.expires_at, now)
    if not command.project_id:
        raise InvalidArgument("is required", field="project_id")
    minted = keys.mint_key()
    async with uow:
        if await uow.projects.get(command.project_id) is None:
            raise InvalidArgument(f"no project with id {command.project_id!r}", field="project_id")
        key = await uow.api_keys.add(
            key_id=new_id("key"), project_id=command.project_id, name=name, prefix=minted.prefix,
            secret_hash=minted.secret_hash, expires_at=command.expires_at,
        )
        event_id = new_id("evt")
        await outbox.record(uow, messages.API_KEY_CREATED, event_id, messages.api_key_created(event_id, key, now))
    return key, minted.secret


async def list_api_keys(
    uow: IngestTransaction, project_id: str, page_size: int, page_token: str
) -> tuple[list[keys.ApiKey], str]:
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        page = await uow.api_keys.list(project_id=project_id, limit=size + 1, after=after)
    return paging.split_page(page, size)


async def revoke_api_key(uow: IngestTransaction, outbox: EventOutbox, key_id: str, now: datetime) -> keys.ApiKey:
    """Revoke at once. Revoking again is harmless and returns the key as first revoked."""
    if not key_id:
        raise InvalidArgument("is required", field="api_key_id")
    async with uow:
        result = await uow.api_keys.revoke(key_id)
        if result is None:
            raise NotFound(f"no API key with id {key_id!r}")
        key, newly_revoked = result
        if newly_revoked:
            event_id = new_id("evt")
            await outbox.record(
                uow, messages.API_KEY_REVOKED, event_id, messages.api_key_revoked(event_id, key, now)
            )
    return key


async def verify_api_key(uow: IngestTransaction, secret: str, now: datetime) -> tuple[Project, keys.ApiKey]:
    """Resolve a presented key to its project, or say why it is refused (never which part was wrong)."""
    prefix = keys.prefix_of(secret)
    if prefix is None:
        raise Unauthenticated("API key is malformed or unknown")
    async with uow:
        found = await uow.api_keys.get_with_project(prefix)
    if found is None or not keys.matches(found[0], secret):
        raise Unauthenticated("API key is malformed or unknown")
    key, project = found
    state = key.state(now)
    if state is keys.ApiKeyState.REVOKED:
        raise PermissionDenied(f"API key {key.prefix} was revoked")
    if state is keys.ApiKeyState.EXPIRED:
        raise PermissionDenied(f"API key {key.prefix} expired")
    return project, key
