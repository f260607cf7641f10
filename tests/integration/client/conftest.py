"""A project with an API key, an ingest server the tests may stop and restart, and what JetStream holds."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing_runtime.service import Runtime
from devstack.ports import free_port
from services.ingest.__main__ import DEFINITION as INGEST
from services.ingest.adapters.event_log import EVENT_BATCH_ACCEPTED
from tests.conftest import running_service
from tests.integration.helpers import organisation_request


@dataclass
class Tenant:
    project_id: str
    api_key: str


@pytest.fixture
async def tenant(invoicing_stub, ingest_stub) -> Tenant:
    organisation = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation
    project = (
        await ingest_stub.CreateProject(
            ingest_pb2.CreateProjectRequest(organisation_id=organisation.id, name=f"client-{secrets.token_hex(4)}")
        )
    ).project
    key = await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id, name="client"))
    return Tenant(project.id, key.secret)


@dataclass
class RestartableIngest:
    """An ingest server of its own on a fixed port, so a test can stop it under a live client and bring it back."""

    database_url: str
    nats_url: str
    invoicing_address: str
    metering_address: str
    port: int = field(default_factory=free_port)
    _stack: AsyncExitStack | None = None
    runtime: Runtime | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._stack = AsyncExitStack()
        self.runtime = await self._stack.enter_async_context(
            running_service(
                INGEST,
                self.database_url,
                self.nats_url,
                invoicing_address=self.invoicing_address,
                metering_address=self.metering_address,
                grpc_port=self.port,
                shutdown_grace_seconds=0,  # open calls are cut at once, as when the process dies
            )
        )

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack, self.runtime = self._stack, None, None
            await stack.aclose()


@pytest.fixture
async def own_ingest(database_url, nats_url, invoicing, metering_port) -> AsyncIterator[RestartableIngest]:
    server = RestartableIngest(database_url, nats_url, invoicing.address, f"127.0.0.1:{metering_port}")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def stored_event_ids(js, project_id: str) -> Counter[str]:
    """How many times JetStream holds each event id of the project (read with a throwaway consumer)."""
    last = (await js.stream_info("BILLING_INGEST")).state.last_seq
    subscription = await js.pull_subscribe(
        EVENT_BATCH_ACCEPTED, stream="BILLING_INGEST", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    counts: Counter[str] = Counter()
    seen = 0
    try:
        while seen < last:
            try:
                messages = await subscription.fetch(1000, timeout=1.0)
            except TimeoutError:
                break
            for message in messages:
                seen = message.metadata.sequence.stream
                batch = events_pb2.EventBatchAccepted.FromString(message.data)
                if batch.project_id == project_id:
                    counts.update(event.event_id for event in batch.events)
    finally:
        await subscription.unsubscribe()
    return counts
