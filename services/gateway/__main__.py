"""python -m services.gateway [serve|migrate]: the HTTP edge, and on its gRPC port the AccessService (users, roles
and tokens, for people with a staff token) beside health and reflection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path

import uvicorn

from billing_runtime import mesh
from billing_runtime.logging import get_logger
from billing_runtime.rate_limit_store import PostgresRateLimits
from billing_runtime.service import Runtime, ServiceDefinition, Wiring, main
from services.gateway.adapters.passwords import Argon2Passwords
from services.gateway.adapters.secrets_keyring import SecretsKeyring
from services.gateway.adapters.services import InvoicingOrganisations, ServiceClients
from services.gateway.adapters.staff import GatewayUnitOfWork
from services.gateway.adapters.tables import metadata
from services.gateway.adapters.webhook_log import JetStreamWebhooks
from services.gateway.config import GatewaySettings
from services.gateway.entrypoints.grpc.access import SERVICE, AccessServicer, add_to_server
from services.gateway.entrypoints.grpc.admission import Admission, safe_methods
from services.gateway.entrypoints.housekeeping import run_housekeeping
from services.gateway.entrypoints.http.app import create_app
from services.gateway.entrypoints.http.permissions import ACCESS_SERVICE, GRPC_TWINS
from services.gateway.service.ports import Passwords
from services.gateway.service.rate_limits import RateLimits

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


async def start_http(
    runtime: Runtime, settings: GatewaySettings, service_clients: ServiceClients, rate_limits: RateLimits,
    passwords: Passwords, uow: Callable[[], GatewayUnitOfWork],
) -> None:
    """Serve the REST API with uvicorn inside this process's event loop; stopped by the shared lifecycle."""
    webhooks = JetStreamWebhooks(runtime.js) if runtime.js is not None else None
    app = create_app(settings, service_clients, runtime.engine, uow, webhooks, rate_limits=rate_limits,
                     passwords=passwords)
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

    runtime.on_shutdown(stop)


def register(runtime: Runtime, settings: GatewaySettings) -> Wiring:
    """The AccessService on the gRPC port now; HTTP once the database answers. Both APIs share the services'
    clients, the rate limits' store (one write budget per credential) and the password hasher."""
    service_clients = ServiceClients(settings.service_addresses())
    runtime.on_shutdown(service_clients.close)
    rate_limits = PostgresRateLimits(runtime.engine)
    passwords = Argon2Passwords()
    keyring = SecretsKeyring(*settings.secrets_keys())
    current_key, previous_keys = keyring.key_ids
    log.info("secrets keys", current_key_id=current_key, previous_key_ids=previous_keys)

    def uow() -> GatewayUnitOfWork:
        return GatewayUnitOfWork(runtime.engine, keyring)

    admission = Admission(settings, uow, rate_limits, safe_methods(SERVICE))
    servicer = AccessServicer(uow, passwords, InvoicingOrganisations(service_clients))
    name = add_to_server(servicer, admission, runtime.server)
    return Wiring([name], on_ready=lambda: start_http(runtime, settings, service_clients, rate_limits, passwords,
                                                                uow))


# Who may call what (billing_runtime.mesh): the AccessService is for people and their tools, not the mesh; each
# call is admitted by its staff token against the permission table (entrypoints/grpc/admission.py).
ACCESS = mesh.methods(ACCESS_SERVICE, dict.fromkeys(GRPC_TWINS, mesh.STAFF))


DEFINITION = ServiceDefinition(
    name="gateway",
    settings_cls=GatewaySettings,
    metadata=metadata,
    migrations_dir=Path(__file__).parent / "migrations",
    register=register,
    # Provider webhooks are handed on to payments through the gateway's own stream.
    uses_nats=True,
    access=ACCESS,
)

if __name__ == "__main__":
    main(DEFINITION)
