"""The lifecycle every service shares: ``python -m services.<name> [serve|migrate]``.

serve: settings -> logging -> gRPC server (health NOT_SERVING) -> the service's ``register`` -> database
(+ migrations) -> NATS (+ stream) -> the service's ``on_ready`` -> SERVING; a monitor flips health to
NOT_SERVING while the database or NATS is unreachable. On SIGTERM or SIGINT: NOT_SERVING, stop the server with a
grace period, stop background work, drain NATS, dispose the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import pydantic
from grpc_health.v1 import health_pb2
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncEngine

from billing_runtime import database, mesh, messaging, metrics, migrations
from billing_runtime.grpc_server import build_server, enable_reflection
from billing_runtime.logging import configure_logging, get_logger
from billing_runtime.outbox import Outbox, OutboxRelay
from billing_runtime.settings import ServiceSettings
from billing_runtime.tracing import configure_tracing, shutdown_tracing

log = get_logger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class Wiring:
    """What a service's register() built: the full names of the gRPC services it added (for health and
    reflection), and the work to start once dependencies are up (a closure over what register built)."""

    service_names: list[str]
    on_ready: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    """What makes one service different from another; everything else is this module's.

    ``register`` receives the runtime and the service's own settings, already of its ``settings_cls``, adds its
    servicers to ``runtime.server`` and returns their :class:`Wiring`. What it builds (clients, executors) is
    handed to the servicers' constructors and captured by ``on_ready``, never stored on the runtime: each piece
    says in its signature what it needs, and nothing looks it up by name later."""

    name: str
    settings_cls: type[S]
    metadata: MetaData
    migrations_dir: Path
    register: Callable[[Runtime, S], Wiring]
    uses_nats: bool = True
    # Unary RPCs answered from memory at thousands a second: not traced, logged only on failure
    # (billing_runtime.grpc_server.build_server).
    hot_methods: frozenset[str] = frozenset()
    # Who may call each of its gRPC methods (billing_runtime.mesh): full method name -> the services allowed,
    # mesh.PUBLIC or mesh.API_KEY. Health and reflection are public anyway; a method missing here is refused
    # (tests/unit/runtime/test_mesh_tables.py checks every method is declared).
    access: Mapping[str, mesh.Access] = field(default_factory=dict)

    @property
    def schema(self) -> str:
        assert self.metadata.schema, "a service's MetaData must name its schema"
        return self.metadata.schema


@dataclass
class Runtime:
    """A running service's dependencies, handed to its servicers and background work."""

    definition: ServiceDefinition[Any]
    settings: ServiceSettings
    engine: AsyncEngine
    server: grpc.aio.Server
    health: Any
    outbox: Outbox
    port: int = 0
    nats: NATS | None = None
    js: JetStreamContext | None = None
    ready: bool = False
    # Set by services that also listen for HTTP (the gateway), e.g. "http://127.0.0.1:8080".
    http_address: str = ""
    metrics_server: metrics.MetricsServer | None = None
    # Who this service is on the mesh: the channels register() makes present it.
    identity: mesh.Identity | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _shutdown_hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _service_names: list[str] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return f"{self.settings.grpc_host}:{self.port}"

    def uow(self) -> database.UnitOfWork:
        return database.UnitOfWork(self.engine)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run background work for the life of the service; a crash is logged, never silent."""
        task = asyncio.create_task(coro, name=name)

        def _done(t: asyncio.Task[Any]) -> None:
            if not t.cancelled() and t.exception() is not None:
                log.error("background task crashed", task=name, error=repr(t.exception()))

        task.add_done_callback(_done)
        self._tasks.append(task)
        return task

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        self._shutdown_hooks.append(hook)

    async def _set_health(self, status: int) -> None:
        for name in ("", *self._service_names):
            await self.health.set(name, status)
        metrics.SERVING.set(1 if status == SERVING else 0)

    async def _connect(self) -> None:
        """Wait for the database and NATS, migrate, provision the stream. Retries until stopped."""
        settings, definition = self.settings, self.definition
        delay = 0.2
        while not self._stopping.is_set():
            try:
                await database.ping(self.engine, settings.dependency_timeout_seconds)
                if settings.migrate_on_start:
                    revision = await migrations.migrate(self.engine, definition.migrations_dir, definition.schema)
                    log.info("migrated", schema=definition.schema, revision=revision)
                if definition.uses_nats:
                    if not settings.nats_url:
                        raise ValueError("nats_url is required: set NATS_URL")
                    self.nats = await messaging.connect(
                        settings.nats_url, name=definition.name, connect_timeout=settings.dependency_timeout_seconds
                    )
                    self.js = self.nats.jetstream()
                    await messaging.ensure_stream(
                        self.js,
                        messaging.stream_name(definition.name),
                        [f"billing.{definition.name}.v1.>"],
                        settings.stream_limits(),
                    )
                return
            except (OSError, TimeoutError, ConnectionError) as error:
                log.warning("dependencies not reachable yet", error=str(error) or repr(error), retry_in=delay)
            except Exception as error:
                # asyncpg/nats raise their own types for "not there yet"; anything else is fatal below.
                if type(error).__module__.split(".")[0] not in ("asyncpg", "nats", "sqlalchemy"):
                    raise
                log.warning("dependencies not reachable yet", error=str(error) or repr(error), retry_in=delay)
            if self.nats is not None:
                await self.nats.close()
                self.nats = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, 5.0)

    async def _monitor_dependencies(self) -> None:
        """Keep health truthful: NOT_SERVING while the database or NATS is unreachable."""
        while True:
            await asyncio.sleep(self.settings.health_check_interval_seconds)
            problem = None
            try:
                await database.ping(self.engine, self.settings.dependency_timeout_seconds)
                metrics.DEPENDENCY_UP.labels("database").set(1)
            except Exception as error:  # noqa: BLE001 - any failure means not serving
                metrics.DEPENDENCY_UP.labels("database").set(0)
                problem = f"database: {error!r}"
            if self.nats is not None:
                metrics.DEPENDENCY_UP.labels("nats").set(1 if self.nats.is_connected else 0)
                if problem is None and not self.nats.is_connected:
                    problem = "nats: disconnected"
            healthy = problem is None
            if healthy != self.ready:
                self.ready = healthy
                await self._set_health(SERVING if healthy else NOT_SERVING)
                if healthy:
                    log.info("health SERVING: dependencies are back")
                else:
                    log.warning("health NOT_SERVING", problem=problem)

    async def start(self) -> None:
        """Bind and start the gRPC server, then wait for dependencies and report SERVING."""
        with mesh.acting_as(self.identity):  # the channels register() and on_ready make present it
            await self._start()

    async def _start(self) -> None:
        wiring = self.definition.register(self, self.settings)
        self._service_names = wiring.service_names
        if self.settings.metrics_port is not None:
            self.metrics_server = metrics.MetricsServer(self.settings.grpc_host, self.settings.metrics_port)
            log.info("metrics listening", url=self.metrics_server.address)
        enable_reflection(self.server, self._service_names)
        self.port = self.server.add_insecure_port(f"{self.settings.grpc_host}:{self.settings.grpc_port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC port {self.settings.grpc_host}:{self.settings.grpc_port}")
        await self._set_health(NOT_SERVING)
        await self.server.start()
        log.info("grpc listening", address=self.address, services=self._service_names)
        await self._connect()
        if self._stopping.is_set():
            return
        if self.js is not None:
            relay = OutboxRelay(self.engine, self.js, self.outbox.table)
            self.outbox.wake_on_commit(relay.wake)
            self.spawn(relay.run(), name="outbox-relay")
        if wiring.on_ready is not None:
            await wiring.on_ready()
        self.ready = True
        await self._set_health(SERVING)
        self.spawn(self._monitor_dependencies(), name="health-monitor")
        log.info("health SERVING", address=self.address)

    async def stop(self) -> None:
        """Graceful shutdown, in the reverse order of start."""
        self._stopping.set()
        self.ready = False
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.settings.shutdown_grace_seconds)
        for hook in reversed(self._shutdown_hooks):
            try:
                await hook()
            except Exception:  # noqa: BLE001 - shutdown continues whatever one hook does
                log.exception("shutdown hook failed")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nats is not None and self.nats.is_connected:
            with contextlib.suppress(Exception):
                await self.nats.drain()
        await self.engine.dispose()
        if self.metrics_server is not None:
            await asyncio.to_thread(self.metrics_server.stop)
        log.info("stopped")


def build_runtime(definition: ServiceDefinition[S], settings: S) -> Runtime:
    # Checked once here, so that register() can trust the type it is given.
    if not isinstance(settings, definition.settings_cls):
        raise TypeError(f"{definition.name} needs {definition.settings_cls.__name__}, not {type(settings).__name__}")
    engine = database.create_engine(settings.database_url, application_name=definition.name)
    holder: dict[str, Runtime] = {}
    token = settings.mesh_token.get_secret_value()
    identity = mesh.Identity(definition.name, token)
    verifiers = mesh.parse_verifiers(settings.mesh_verifiers)
    if not token:
        prefix = definition.settings_cls.model_config.get("env_prefix", "")
        log.warning(f"no {prefix}MESH_TOKEN: the other services will refuse this one's calls")
    if not verifiers and any(not isinstance(a, mesh.Open) for a in definition.access.values()):
        log.warning("no MESH_VERIFIERS: every mesh-only method will be refused")
    server, health_servicer = build_server(
        is_ready=lambda: holder["runtime"].ready, max_message_bytes=settings.grpc_max_message_bytes,
        hot_methods=definition.hot_methods, guard=mesh.Guard(definition.access, verifiers),
    )
    runtime = Runtime(
        definition=definition,
        settings=settings,
        engine=engine,
        server=server,
        health=health_servicer,
        outbox=Outbox(definition.metadata.tables[f"{definition.schema}.outbox"]),
        identity=identity,
    )
    holder["runtime"] = runtime
    return runtime


async def serve(definition: ServiceDefinition[S], settings: S) -> None:
    runtime = build_runtime(definition, settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime._stopping.set)
    starting = asyncio.create_task(runtime.start())
    stopping = asyncio.create_task(runtime._stopping.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        await runtime.stop()
        raise starting.exception()  # type: ignore[misc]
    await stopping
    log.info("shutting down")
    if not starting.done():
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
    await runtime.stop()


async def _migrate_only(definition: ServiceDefinition[S], settings: S) -> None:
    engine = database.create_engine(settings.database_url, application_name=f"{definition.name}-migrate")
    try:
        revision = await migrations.migrate(engine, definition.migrations_dir, definition.schema)
        log.info("migrated", schema=definition.schema, revision=revision)
    finally:
        await engine.dispose()


def main(definition: ServiceDefinition[Any], argv: list[str] | None = None) -> None:
    """Entry point of ``python -m services.<name>``."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{definition.name}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    args = parser.parse_args(argv)
    try:
        settings = definition.settings_cls()
    except (pydantic.ValidationError, ValueError) as error:
        print(f"{definition.name}: invalid configuration:\n{error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(definition.name, settings.log_level, settings.log_format)
    configure_tracing(definition.name)
    runner = serve if args.command == "serve" else _migrate_only
    try:
        asyncio.run(runner(definition, settings))
    except KeyboardInterrupt:
        pass
    finally:
        shutdown_tracing()
