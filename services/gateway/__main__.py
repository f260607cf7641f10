"""python -m services.gateway [serve|migrate]: the HTTP edge, plus gRPC health and reflection like every
service."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import uvicorn

from billing_runtime.logging import get_logger
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.gateway.adapters.secrets_keyring import SecretsKeyring
from services.gateway.adapters.services import ServiceClients
from services.gateway.adapters.staff import GatewayUnitOfWork
from services.gateway.adapters.tables import metadata
from services.gateway.adapters.webhook_log import JetStreamWebhooks
from services.gateway.config import GatewaySettings
from services.gateway.entrypoints.housekeeping import run_housekeeping
from services.gateway.entrypoints.http.app import create_app

log = get_logger(__name__)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP said out loud: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto is TCP, and
    # with Nagle on, a response written as headers then body waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(f"cannot listen for HTTP on {host}:{port}: {error.strerror}") from None
    sock.listen(2048)
    return sock


async def start_http(runtime: Runtime, settings: GatewaySettings) -> None:
    """Serve the REST API with uvicorn inside this process's event loop; stopped by the shared lifecycle."""
    service_clients = ServiceClients(settings.service_addresses())
    webhooks = JetStreamWebhooks(runtime.js) if runtime.js is not None else None

    keyring = SecretsKeyring(*settings.secrets_keys())
    current_key, previous_keys = keyring.key_ids
    log.info("secrets keys", current_key_id=current_key, previous_key_ids=previous_keys)

    def uow() -> GatewayUnitOfWork:
        return GatewayUnitOfWork(runtime.engine, keyring)

    app = create_app(settings, service_clients, runtime.engine, uow, webhooks)
    sock = _bind(settings.http_host, settings.http_port)
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", server_header=False)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # the shared lifecycle owns SIGTERM and SIGINT
    task = runtime.spawn(server.serve(sockets=[sock]), name="http")
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn offers no event
        await asyncio.sleep(0.02)
    host, port = sock.getsockname()[:2]
    runtime.http_address = f"http://{host}:{port}"
    log.info("http listening", url=runtime.http_address, docs=f"{runtime.http_address}/docs")
    runtime.spawn(run_housekeeping(uow, settings), name="gateway-housekeeping")

    async def stop() -> None:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
        await service_clients.close()

    runtime.on_shutdown(stop)


def register(runtime: Runtime, settings: GatewaySettings) -> Wiring:
    """No gRPC service of its own (health and reflection only); HTTP starts once the database answers."""
    return Wiring([], on_ready=lambda: start_http(runtime, settings))


DEFINITION = ServiceDefinition(
    name="gateway",
    settings_cls=GatewaySettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    # Provider webhooks are handed on to payments through the gateway's own stream.
    uses_nats=True,
)

if __name__ == "__main__":
    main(DEFINITION)
