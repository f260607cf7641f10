"""A service names the field at fault in its own request's terms; the REST client wants the path in the body it
sent. ``charges[0].charge.tiers[1].up_to`` from invoicing's plan validation is ``terms.charges[0]...`` in the
body of ``POST /plans``; ``effective_time`` is ``effective_at``."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from billing_runtime import clients
from billing_runtime.errors import DomainError

Response = TypeVar("Response")

# PlanTerms' fields: invoicing validates the terms on their own, so its paths start at them.
TERMS_FIELDS = frozenset({"currency", "base_fee", "charges", "quotas", "gst_rate", "sac_code", "description",
                          "enforce_quotas_at_ingest", "entitlements", "ingest_rate_limit", "billing_interval",
                          "base_fee_timing", "annual_discount_percent", "listed"})
_HEAD = re.compile(r"^([A-Za-z_]+)(.*)$", re.DOTALL)


def in_terms(field: str) -> str:
    """``charges[0].charge.model`` -> ``terms.charges[0].charge.model``; ``code`` stays ``code``."""
    match = _HEAD.match(field)
    return f"terms.{field}" if match and match.group(1) in TERMS_FIELDS else field


def renamed(names: dict[str, str]) -> Callable[[str], str]:
    """Rename a path's first name: ``renamed({"effective_time": "effective_at"})``."""

    def rename(field: str) -> str:
        match = _HEAD.match(field)
        if match and match.group(1) in names:
            return names[match.group(1)] + match.group(2)
        return field

    return rename


async def call(rpc: Callable[..., Awaitable[Response]], request: object, rename: Callable[[str], str], *,
               timeout: float = 5.0) -> Response:
    """``clients.call``, with the field of a failure (if any) renamed to the REST body's path."""
    try:
        return await clients.call(rpc, request, timeout=timeout)
    except DomainError as error:
        if error.field is None or type(error) is DomainError:
            raise
        raise type(error)(error.message, field=rename(error.field)) from None
