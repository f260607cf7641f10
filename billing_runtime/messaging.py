"""NATS connection and JetStream stream provisioning: one stream per owning service."""

from __future__ import annotations

from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from billing_runtime.logging import get_logger

log = get_logger(__name__)


def stream_name(service: str) -> str:
    """``BILLING_INGEST`` for ``ingest``: the stream holding every ``billing.ingest.v1.>`` subject."""
    return f"BILLING_{service.upper()}"


async def connect(url: str, *, name: str, connect_timeout: float = 2.0) -> NATS:
    """Connect once (raises if NATS is not there); afterwards the client reconnects for ever."""

    async def on_disconnect() -> None:
        log.warning("nats disconnected")

    async def on_reconnect() -> None:
        log.info("nats reconnected")

    async def on_error(error: Exception) -> None:
        log.debug("nats error", error=str(error))

    return await nats.connect(
        url,
        name=name,
        connect_timeout=connect_timeout,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        error_cb=on_error,
    )


@dataclass(frozen=True)
class StreamLimits:
    """How much a stream keeps, and on how many servers.

    ``max_age_seconds`` and ``max_bytes`` bound it (None: no such bound); past a bound the oldest messages go
    (``discard_new`` False: consumers are expected to be far behind the newest message, never the oldest; a
    consumer lag alert says when they are not) or, with ``discard_new``, publishing is refused until room is made.
    ``replicas`` is JetStream's own replication: 3 on a 3-node cluster keeps every message through the loss of
    one server; 1 on a single server."""

    max_age_seconds: float | None = None
    max_bytes: int | None = None
    discard_new: bool = False
    replicas: int = 1


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: list[str], limits: StreamLimits | None = None
) -> None:
    """Create the stream, or bring an existing one's subjects and limits up to date. Safe to call from every
    replica. A server that cannot hold the limits (more replicas than servers, more bytes than its store
    allows) answers with an error, raised as is."""
    limits = limits or StreamLimits()
    config = StreamConfig(
        name=name,
        subjects=subjects,
        storage=StorageType.FILE,
        duplicate_window=120.0,  # seconds during which a Nats-Msg-Id is remembered
        max_age=limits.max_age_seconds,
        max_bytes=limits.max_bytes,
        discard=DiscardPolicy.NEW if limits.discard_new else DiscardPolicy.OLD,
        num_replicas=limits.replicas,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=name, subjects=subjects, **_described(limits))
        return
    if _differs(info.config, config):
        await js.update_stream(config)
        log.info("stream updated", stream=name, subjects=subjects, **_described(limits))


def _differs(current: StreamConfig, wanted: StreamConfig) -> bool:
    """Whether the stream's configuration differs from the one wanted in anything ``ensure_stream`` sets.
    The server reports "no limit" as 0 or -1 (and an age in seconds as given), hence the normalising."""

    def limit(value: float | int | None) -> float:
        return 0 if value is None or value <= 0 else value

    return (
        sorted(current.subjects or []) != sorted(wanted.subjects or [])
        or limit(current.max_age) != limit(wanted.max_age)
        or limit(current.max_bytes) != limit(wanted.max_bytes)
        or (current.discard or DiscardPolicy.OLD) != wanted.discard
        or (current.num_replicas or 1) != wanted.num_replicas
    )


def _described(limits: StreamLimits) -> dict[str, object]:
    return {
        "max_age_seconds": limits.max_age_seconds,
        "max_bytes": limits.max_bytes,
        "discard": "new" if limits.discard_new else "old",
        "replicas": limits.replicas,
    }
