"""A gateway in this process in front of the real ingest, invoicing and metering services, and a fresh project
with an API key for each test that wants one; for the modules that collect, a payments service pointed at a
Razorpay sandbox of the module's own, and a gateway in front of it."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from billing.ingest.v1 import ingest_pb2
from billing_runtime import database, migrations
from billing_runtime.service import Runtime
from sandboxes.razorpay import RunningSandbox, running_sandbox
from services.gateway.__main__ import DEFINITION as GATEWAY
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import running_service
from tests.integration.helpers import organisation_request
from tests.integration.notification.receiver import receiver

# A customer's webhook endpoint (the fixture notification's tests use too).
__all__ = ["receiver"]

GATEWAY_ADMIN_TOKEN = "test-admin-token-for-events-0123"
# Small enough that the 413 test sends little, large enough for a 10,001-event body (to meet ingest's limit).
EVENTS_MAX_BODY_BYTES = 1024 * 1024
RAZORPAY_KEY_ID = "rzp_test_CliPayments001"
RAZORPAY_KEY_SECRET = "cli_payments_key_secret"


@pytest.fixture(scope="session")
async def gateway_runtime(database_url, nats_url, ingest, invoicing, metering, refused_address
                          ) -> AsyncIterator[Runtime]:
    """The session's gateway: its REST API at ``http_address``, its gRPC AccessService at ``address``."""
    async with running_service(
        GATEWAY,
        database_url,
        nats_url,
        admin_token=GATEWAY_ADMIN_TOKEN,
        http_port=0,
        ingest_address=ingest.address,
        invoicing_address=invoicing.address,
        metering_address=metering.address,
        # Not running in these tests: down, rather than whatever listens on their default ports.
        payments_address=refused_address,
        notification_address=refused_address,
        events_max_body_bytes=EVENTS_MAX_BODY_BYTES,
    ) as runtime:
        yield runtime


@pytest.fixture(scope="session")
def gateway_url(gateway_runtime) -> str:
    return gateway_runtime.http_address


@pytest.fixture(scope="session")
async def gateway_engine(database_url) -> AsyncIterator[AsyncEngine]:
    """An engine on the session's database with the gateway's schema migrated, for tests of its repositories
    (no gateway process needed)."""
    engine = database.create_engine(database_url, application_name="gateway-tests")
    try:
        await migrations.migrate(engine, GATEWAY.migrations_dir, GATEWAY.schema)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def admin_http(gateway_url) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
        yield client


@dataclass
class KeyHolder:
    """A project and its API key, with an HTTP client that sends the key."""

    organisation_id: str
    project_id: str
    api_key: str
    http: httpx.AsyncClient

    async def send(self, body: Any, path: str = "/api/v1/events") -> httpx.Response:
        return await self.http.post(path, json=body)


async def new_project(invoicing_stub, ingest_stub, organisation_id: str | None = None) -> tuple[str, str, str]:
    """(organisation id, project id, API key secret) of a new project, in a new organisation unless given."""
    if organisation_id is None:
        organisation_id = (await invoicing_stub.CreateOrganisation(organisation_request())).organisation.id
    project = (await ingest_stub.CreateProject(
        ingest_pb2.CreateProjectRequest(organisation_id=organisation_id, name=f"p{secrets.token_hex(4)}")
    )).project
    secret = (await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id))).secret
    return organisation_id, project.id, secret


@pytest.fixture
async def key_holder(gateway_url, invoicing_stub, ingest_stub) -> AsyncIterator[KeyHolder]:
    organisation_id, project_id, secret = await new_project(invoicing_stub, ingest_stub)
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(base_url=gateway_url, headers=headers, timeout=30) as client:
        yield KeyHolder(organisation_id, project_id, secret, client)


async def eventually(
    check: Callable[[], Any], until: Callable[[Any], bool] = bool, *, timeout: float = 30.0, what: str = "the condition"
) -> Any:
    """Await ``check()`` until its result satisfies ``until`` (metering folds events in asynchronously); the
    timeout is generous for a busy machine, and the last result is in the failure."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if until(last):
            return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last saw {last!r}")


# Module-scoped (each module that asks gets its own): a payments service left running would make orders for later
# modules' invoices at this module's sandbox (they share the database and the invoice stream).
@pytest.fixture(scope="module")
async def razorpay() -> AsyncIterator[RunningSandbox]:
    async with running_sandbox(key_id=RAZORPAY_KEY_ID, key_secret=RAZORPAY_KEY_SECRET,
                               webhook_secret="unused") as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
async def payments(database_url, nats_url, invoicing, razorpay) -> AsyncIterator[Runtime]:
    # No webhooks reach payments here (the sandbox keeps them in its log): a payment known from Checkout's
    # answer is fetched from the provider at once (capture_after 0), as it is when a webhook is late.
    async with running_service(
        PAYMENTS, database_url, nats_url, razorpay_key_id=RAZORPAY_KEY_ID, razorpay_key_secret=RAZORPAY_KEY_SECRET,
        razorpay_base_url=razorpay.url, checkout_url_template=f"{razorpay.url}/checkout/{{order_id}}",
        capture_after_seconds=0, worker_interval_seconds=0.1, provider_retry_base_seconds=0.2,
        daily_reconciliation=False, invoice_events_durable=f"payments-cli-{secrets.token_hex(3)}",
    ) as runtime:
        yield runtime


@pytest.fixture(scope="module")
async def payments_gateway(database_url, nats_url, ingest, invoicing, metering, payments,
                           refused_address) -> AsyncIterator[str]:
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=payments.address,
        notification_address=refused_address,  # not running in these tests: down, not a default port
    ) as runtime:
        yield runtime.http_address


@pytest.fixture
async def admin(payments_gateway) -> AsyncIterator[httpx.AsyncClient]:
    """The admin API of the gateway in front of payments."""
    async with httpx.AsyncClient(base_url=payments_gateway, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as client:
        yield client
