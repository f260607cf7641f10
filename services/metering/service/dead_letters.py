"""Reading back the event batches metering could not process."""

from __future__ import annotations

from typing import Protocol

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument
from services.metering.adapters.dead_letters import DeadLetter


class DeadLetterArchive(Protocol):
    async def list(self, limit: int, before: int | None) -> tuple[list[DeadLetter], int | None]: ...


async def list_dead_letters(
    archive: DeadLetterArchive, page_size: int, page_token: str
) -> tuple[list[DeadLetter], str]:
    """Newest first. The page token is the dead-letter sequence the next page continues below."""
    size = paging.page_size(page_size)
    before = None
    if page_token:
        if not page_token.isdigit() or int(page_token) <= 0:
            raise InvalidArgument("is not a token returned by a previous page", field="page_token")
        before = int(page_token)
    letters, next_before = await archive.list(size, before)
    return letters, str(next_before) if next_before else ""
