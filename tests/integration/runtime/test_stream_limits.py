"""JetStream streams are created with their limits (age, size, discard policy, replicas) and brought up to date
when the limits change; a full stream drops its oldest messages or, when asked, refuses new ones."""

from __future__ import annotations

import secrets

import nats
import pytest
from nats.js.api import DiscardPolicy
from nats.js.errors import APIError

from billing_runtime.messaging import StreamLimits, ensure_stream
from services.ingest.config import IngestSettings
from services.invoicing.config import InvoicingSettings

MIB = 1024 * 1024


@pytest.fixture
async def js(nats_url):
    client = await nats.connect(nats_url)
    try:
        yield client.jetstream()
    finally:
        await client.close()


def unique_stream() -> tuple[str, str]:
    token = secrets.token_hex(4)
    return f"TEST_LIMITS_{token.upper()}", f"test.limits.{token}"


async def test_a_stream_is_created_with_its_limits_and_updated_when_they_change(js):
    name, subject = unique_stream()
    await ensure_stream(js, name, [f"{subject}.>"], StreamLimits(max_age_seconds=3600, max_bytes=8 * MIB))
    config = (await js.stream_info(name)).config
    assert (config.max_age, config.max_bytes, config.discard, config.num_replicas) == (
        3600, 8 * MIB, DiscardPolicy.OLD, 1
    )

    # The same limits again (another replica starting) change nothing; new ones are applied.
    await ensure_stream(js, name, [f"{subject}.>"], StreamLimits(max_age_seconds=3600, max_bytes=8 * MIB))
    await ensure_stream(
        js, name, [f"{subject}.>"], StreamLimits(max_age_seconds=600, max_bytes=2 * MIB, discard_new=True)
    )
    config = (await js.stream_info(name)).config
    assert (config.max_age, config.max_bytes, config.discard) == (600, 2 * MIB, DiscardPolicy.NEW)

    # Back to no limits at all.
    await ensure_stream(js, name, [f"{subject}.>"], StreamLimits())
    config = (await js.stream_info(name)).config
    assert not config.max_age and config.max_bytes in (None, -1, 0)


async def test_a_full_stream_drops_its_oldest_messages_by_default(js):
    name, subject = unique_stream()
    await ensure_stream(js, name, [f"{subject}.>"], StreamLimits(max_bytes=1 * MIB))
    payload = b"x" * (100 * 1024)
    for number in range(20):  # 2 MB into a 1 MiB stream
        await js.publish(f"{subject}.event", payload, headers={"Nats-Msg-Id": f"m{number}"})
    state = (await js.stream_info(name)).state
    assert state.bytes <= 1 * MIB
    assert state.last_seq == 20 and state.first_seq > 1, "the oldest were dropped, the newest kept"


async def test_a_full_stream_that_discards_new_refuses_and_keeps_what_it_holds(js):
    name, subject = unique_stream()
    await ensure_stream(js, name, [f"{subject}.>"], StreamLimits(max_bytes=1 * MIB, discard_new=True))
    payload = b"x" * (100 * 1024)
    stored = 0
    with pytest.raises(APIError):
        for number in range(20):
            await js.publish(f"{subject}.event", payload, headers={"Nats-Msg-Id": f"m{number}"})
            stored += 1
    state = (await js.stream_info(name)).state
    assert 0 < stored < 20
    assert (state.first_seq, state.messages) == (1, stored), "nothing it had acknowledged was dropped"


async def test_more_replicas_than_servers_is_refused_by_the_server(js):
    """A single server cannot keep three copies: the error reaches the service (which keeps retrying and logs it)
    instead of a stream silently kept on one server."""
    name, subject = unique_stream()
    with pytest.raises(APIError):
        await ensure_stream(js, name, [f"{subject}.>"], StreamLimits(replicas=3))


def test_every_service_stream_has_an_age_and_a_size_limit(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://unused/unused")
    ingest = IngestSettings().stream_limits()
    assert (ingest.max_age_seconds, ingest.max_bytes, ingest.discard_new, ingest.replicas) == (
        7 * 86_400, 4 * 1024**3, False, 1
    )
    invoicing = InvoicingSettings().stream_limits()
    assert invoicing.max_age_seconds == 30 * 86_400 and invoicing.max_bytes == 256 * MIB

    monkeypatch.setenv("INVOICING_STREAM_REPLICAS", "3")
    monkeypatch.setenv("INVOICING_STREAM_DISCARD", "new")
    invoicing = InvoicingSettings().stream_limits()
    assert (invoicing.replicas, invoicing.discard_new) == (3, True)
