"""Keyset pagination over time-ordered ids: the page token is the last id of the previous page."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar

from billing_runtime.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_TOKEN = re.compile(r"^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$")


def page_size(requested: int) -> int:
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(f"must be between 0 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})",
                              field="page_size")
    return requested or DEFAULT_PAGE_SIZE


def page_after(token: str) -> str | None:
    """The id to continue after, or None for the first page."""
    if not token:
        return None
    if not _TOKEN.fullmatch(token):
        raise InvalidArgument("is not a token returned by a previous page", field="page_token")
    return token


class _HasId(Protocol):
    id: str


Item = TypeVar("Item", bound=_HasId)


def split_page(rows: Sequence[Item], size: int) -> tuple[list[Item], str]:
    """Repositories fetch ``size + 1`` rows: the extra one only says another page exists.

    Returns the page and the next page's token ('' on the last page)."""
    page = list(rows[:size])
    return page, (page[-1].id if len(rows) > size else "")
