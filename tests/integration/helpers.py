"""Small things several integration tests need."""

from __future__ import annotations

import secrets

import grpc
import pytest
from google.protobuf.message import DecodeError
from nats.js.api import ConsumerConfig, DeliverPolicy

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.error_mapping import from_grpc_error
from services.ingest.adapters.event_log import EVENT_BATCH_ACCEPTED


def organisation_request(**overrides: str) -> invoicing_pb2.CreateOrganisationRequest:
    values = {
        "name": f"Acme {secrets.token_hex(3)}",
        "billing_email": "billing@acme.example",
        "billing_currency": "INR",
        "country": "IN",
        "state_code": "29",
        "gstin": "29ABCDE1234F1ZW",
        "timezone": "Asia/Kolkata",
        **overrides,
    }
    return invoicing_pb2.CreateOrganisationRequest(**values)


async def expect_rpc_error(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await ``call`` and return its error, failing unless it ends with ``code``."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


def error_field(error: grpc.aio.AioRpcError) -> str | None:
    """The field a service named in its BadRequest detail."""
    return from_grpc_error(error).field


async def stored_batches(ingest, project_id: str) -> list[events_pb2.EventBatchAccepted]:
    """Every event batch JetStream holds for the project, in stream order (read with a throwaway consumer)."""
    js = ingest.js
    last = (await js.stream_info("BILLING_INGEST")).state.last_seq
    subscription = await js.pull_subscribe(
        EVENT_BATCH_ACCEPTED, stream="BILLING_INGEST", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    found: list[events_pb2.EventBatchAccepted] = []
    seen = 0
    try:
        while seen < last:
            try:
                messages = await subscription.fetch(500, timeout=0.5)
            except TimeoutError:
                break
            for message in messages:
                seen = message.metadata.sequence.stream
                try:
                    batch = events_pb2.EventBatchAccepted.FromString(message.data)
                except DecodeError:
                    continue  # another test's deliberately corrupt message (metering's dead-letter tests)
                if batch.project_id == project_id:
                    found.append(batch)
    finally:
        await subscription.unsubscribe()
    return found


async def stored_events(ingest, project_id: str) -> list[ingest_pb2.Event]:
    return [event for batch in await stored_batches(ingest, project_id) for event in batch.events]
