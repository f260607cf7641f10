"""NATS connection and JetStream stream provisioning: one stream per owning service."""

from __future__ import annotations

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
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


async def ensure_stream(
    js: JetStreamContext, name: str, subjects: list[str], *, max_age_seconds: float | None = None
) -> None:
    """Create the stream, or bring an existing one's subjects (and age limit) up to date. Safe to call from
    every replica. ``max_age_seconds`` drops messages older than that; None keeps them until other limits."""
    config = StreamConfig(
        name=name,
        subjects=subjects,
        storage=StorageType.FILE,
        duplicate_window=120.0,  # seconds during which a Nats-Msg-Id is remembered
        max_age=max_age_seconds,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", stream=name, subjects=subjects)
        return
    age_differs = max_age_seconds is not None and info.config.max_age != max_age_seconds
    if sorted(info.config.subjects or []) != sorted(subjects) or age_differs:
        await js.update_stream(config)
        log.info("stream updated", stream=name, subjects=subjects)
