"""The services as child processes (``python -m services.<name>``), each on its own gRPC port, started in
dependency order and declared up only when the standard gRPC health check answers SERVING.

Used by ``python -m devstack run`` and by the end-to-end tests, which also kill and restart single services.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from billing_runtime import mesh as trust
from devstack import console
from devstack.console import Reporter
from devstack.errors import DevstackError
from devstack.logs import tail
from devstack.ports import LOCALHOST, hold_port, pick_port, wait_for_tcp
from devstack.processes import read_record, reclaim, send_signal, stop_child, write_record
from devstack.state import new_secrets_key

REPO_ROOT = Path(__file__).resolve().parent.parent

# Start order: invoicing first because ingest resolves organisations through it; the gateway last because it
# fronts everything else. Stop order is the reverse.
ORDER: tuple[str, ...] = ("invoicing", "ingest", "metering", "payments", "notification", "gateway")
DEFAULT_GRPC_PORTS: Mapping[str, int] = {
    "ingest": 50051,
    "metering": 50052,
    "invoicing": 50053,
    "payments": 50054,
    "notification": 50055,
    "gateway": 50056,
}
DEFAULT_HTTP_PORT = 8080
# Prometheus /metrics of each service: 915x mirrors the gRPC ports 5005x.
DEFAULT_METRICS_PORTS: Mapping[str, int] = {
    "ingest": 9151,
    "metering": 9152,
    "invoicing": 9153,
    "payments": 9154,
    "notification": 9155,
    "gateway": 9156,
}
HEALTH_TIMEOUT = 60.0
# Where a run writes the operator's mesh token (mode 0600), for calling a service by hand (docs/security.md).
OPERATOR_TOKEN_FILE = "mesh-operator-token"


def health_status(address: str, timeout: float = 1.0) -> str:
    """Standard gRPC health check (service "") of ``host:port``: the status name, or ``UNREACHABLE``."""
    with grpc.insecure_channel(address) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return "UNREACHABLE"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


def stop_leftover_services(data_dir: Path, say: Reporter = console.say, timeout: float = 15.0) -> None:
    """Stop services that a killed earlier run left running on this data directory (recorded in its pid files).

    They run in their own sessions, so they outlive a SIGKILLed parent and keep their ports; stopping them
    first lets this run use the default ports again.
    """
    pid_dir = Path(data_dir).absolute() / "pids"
    if not pid_dir.is_dir():
        return
    for pid_file in sorted(pid_dir.glob("*.pid")):
        record = read_record(pid_file)
        if record is None:
            continue
        if record.owner_alive():
            continue  # another live Mesh on this data directory runs it: not ours to stop
        service = service_of(pid_file.stem)
        reclaim(record.pid, record.owner, [f"-m services.{service}"], pid_file.stem, say, timeout=timeout)
        pid_file.unlink(missing_ok=True)


def service_of(name: str) -> str:
    """The service a process name runs: ``metering`` for ``metering`` and for its replica ``metering-2``."""
    return name.split("-", 1)[0]


class ServiceStartError(DevstackError):
    """A service exited or did not report SERVING in time; the message carries the tail of its log."""


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_offset: int
    # Set when we stop or kill it on purpose, so supervision does not report the exit as a crash.
    expected_exit: bool = False
    reported: bool = False


class Mesh:
    """The service processes of one local platform.

    ``services`` (a subset of :data:`ORDER`, started in the given order) run; every name in ORDER gets a
    port anyway, so the gateway and the services always know where the others would be. Ports prefer the
    documented defaults (``prefer_default_ports=False`` takes free ports, which is what tests want) and
    ``ports`` overrides single ones (0 = any free port). ``env`` is added to every child's environment,
    ``service_env[name]`` to one child's. Construction stops services that a killed earlier run left behind
    in the same ``data_dir`` (see :func:`stop_leftover_services`).

    Each mesh makes fresh mesh credentials (billing_runtime.mesh): a token per service (``<SVC>_MESH_TOKEN``),
    one for :attr:`operator` (what tests, benchmarks and a developer call services with: :meth:`channel`), and
    ``MESH_VERIFIERS`` with all their hashes for every service. The gateway seals TOTP secrets with
    ``gateway_secrets_key`` (``GATEWAY_SECRETS_KEY``); without one the mesh makes a new key, which suits a database
    the mesh starts with: `make run` keeps its key in the data directory, beside the database.
    """

    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        nats_url: str,
        admin_token: str,
        *,
        gateway_secrets_key: str | None = None,
        services: Sequence[str] = ORDER,
        ports: Mapping[str, int] | None = None,
        http_port: int | None = None,
        prefer_default_ports: bool = True,
        env: Mapping[str, str] | None = None,
        service_env: Mapping[str, Mapping[str, str]] | None = None,
        log_format: str = "json",
        health_timeout: float = HEALTH_TIMEOUT,
        stop_timeout: float = 15.0,
        python: str = sys.executable,
        cwd: Path = REPO_ROOT,
        say: Reporter = console.say,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.database_url = database_url
        self.nats_url = nats_url
        self.admin_token = admin_token
        self.gateway_secrets_key = gateway_secrets_key or new_secrets_key()
        self.services: tuple[str, ...] = tuple(services)
        self.log_dir = self.data_dir / "logs"
        self.pid_dir = self.data_dir / "pids"
        self.health_timeout = health_timeout
        self.stop_timeout = stop_timeout
        self._env = dict(env or {})
        self._service_env = {name: dict(values) for name, values in (service_env or {}).items()}
        self._log_format = log_format
        self._python = python
        self._cwd = cwd
        self._say = say
        self._children: dict[str, _Child] = {}
        self.mesh_tokens: dict[str, str] = {
            service_of(name): secrets.token_urlsafe(32) for name in (*ORDER, *self.services, trust.OPERATOR)
        }
        self.operator = trust.Identity(trust.OPERATOR, self.mesh_tokens[trust.OPERATOR])

        # Before choosing ports: leftovers of a killed run would otherwise push us off the defaults.
        stop_leftover_services(self.data_dir, say, stop_timeout)
        overrides = dict(ports or {})
        self.ports: dict[str, int] = {}
        for name in dict.fromkeys((*ORDER, *self.services)):
            preferred = overrides.get(name, DEFAULT_GRPC_PORTS.get(name, 0) if prefer_default_ports else 0)
            self.ports[name] = pick_port(preferred)
            if preferred and self.ports[name] != preferred and name in self.services:
                say(f"port {preferred} is taken; {name} will use {self.ports[name]}")
        self.metrics_ports: dict[str, int] = {
            name: pick_port(DEFAULT_METRICS_PORTS.get(name, 0) if prefer_default_ports else 0)
            for name in dict.fromkeys((*ORDER, *self.services))
        }
        preferred_http = http_port if http_port is not None else (DEFAULT_HTTP_PORT if prefer_default_ports else 0)
        self.http_port = pick_port(preferred_http)
        # Replicas (see start_replica): the HTTP port of a second gateway, and the peers a replica talks to.
        self.http_ports: dict[str, int] = {"gateway": self.http_port}
        self._peers: dict[str, dict[str, str]] = {}
        if preferred_http and self.http_port != preferred_http and "gateway" in self.services:
            say(f"port {preferred_http} is taken; the gateway's HTTP API will use {self.http_port}")
        # Each service's ports, held from now until it serves on them (see devstack.ports.hold_port).
        self._held: dict[str, list[socket.socket]] = {}
        for name in self.services:
            self._hold(name)

    # -- where things are ------------------------------------------------------------------------------------

    def address(self, name: str) -> str:
        """``127.0.0.1:<port>`` of a service's gRPC server."""
        return f"{LOCALHOST}:{self.ports[name]}"

    def channel(self, name: str, **kwargs: object) -> grpc.aio.Channel:
        """A ``grpc.aio`` channel to a service (or replica) that presents the operator's mesh credential."""
        return trust.aio_channel(self.address(name), self.operator, **kwargs)

    def sync_channel(self, name: str, **kwargs: object) -> grpc.Channel:
        """The blocking kind of :meth:`channel`."""
        return trust.sync_channel(self.address(name), self.operator, **kwargs)

    @property
    def operator_token_file(self) -> Path:
        return self.data_dir / OPERATOR_TOKEN_FILE

    def write_operator_token(self) -> Path:
        """Write the operator's token to the data directory, readable by this user only."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.operator_token_file
        path.unlink(missing_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(self.operator.token + "\n")
        return path

    def metrics_url(self, name: str) -> str:
        """Where a service serves its Prometheus metrics."""
        return f"http://{LOCALHOST}:{self.metrics_ports[name]}/metrics"

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway's HTTP API."""
        return self.http_url("gateway")

    def http_url(self, name: str) -> str:
        """Base URL of the HTTP API of the gateway ``name`` (``gateway`` or a replica such as ``gateway-2``)."""
        return f"http://{LOCALHOST}:{self.http_ports[name]}"

    def log_path(self, name: str) -> Path:
        """The file a service's stdout and stderr go to (appended across restarts)."""
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The last lines the service logged since it was last started."""
        child = self._children.get(name)
        return tail(self.log_path(name), lines, child.log_offset if child else 0)

    def note(self, name: str, event: str, level: str = "info", **fields: object) -> None:
        """Append one of devstack's own lines to a service's log: JSON like the services' own lines, so the
        file stays machine-readable and shows where a run began, or why the service was restarted."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        line = {"timestamp": _now(), "level": level, "event": event, "service": name, **fields}
        with self.log_path(name).open("ab") as log:
            log.write((json.dumps(line, default=str) + "\n").encode())

    def env_for(self, name: str) -> dict[str, str]:
        """The environment a service (or replica) is started with: ours, plus its database, NATS, ports and
        peers. A replica gets the same settings as its service, on its own ports."""
        service = service_of(name)
        prefix = service.upper()
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "NATS_URL": self.nats_url,
                f"{prefix}_GRPC_PORT": str(self.ports[name]),
                f"{prefix}_METRICS_PORT": str(self.metrics_ports[name]),
                f"{prefix}_LOG_FORMAT": self._log_format,
                "PYTHONUNBUFFERED": "1",  # log lines reach the file (and a crash's traceback) immediately
            }
        )
        # Every service learns every peer's address as <NAME>_<PEER>_ADDRESS: INGEST_INVOICING_ADDRESS and the
        # gateway's GATEWAY_<SVC>_ADDRESS are the documented ones; settings classes ignore the rest.
        peers = self._peers.get(name, {})
        for peer in ORDER:
            if peer != service:
                env[f"{prefix}_{peer.upper()}_ADDRESS"] = self.address(peers.get(peer, peer))
        # Its own mesh token, and the verifiers of every caller (the services and the operator).
        env[f"{prefix}_MESH_TOKEN"] = self.mesh_tokens[service]
        env["MESH_VERIFIERS"] = trust.format_verifiers(self.mesh_tokens)
        if service == "gateway":
            env["GATEWAY_HTTP_PORT"] = str(self.http_ports[name])
            env["GATEWAY_ADMIN_TOKEN"] = self.admin_token
            env["GATEWAY_SECRETS_KEY"] = self.gateway_secrets_key
            # Plain http on 127.0.0.1: a Secure session cookie would never come back from the browser.
            env.setdefault("GATEWAY_COOKIE_SECURE", "false")
        env.update(self._env)
        env.update(self._service_env.get(service, {}))
        if name != service:
            env.update(self._service_env.get(name, {}))  # a replica's own additions
        return env

    def add_env(self, name: str, values: Mapping[str, str]) -> None:
        """Add to one service's environment before it starts (e.g. where the Razorpay sandbox listens)."""
        self._service_env.setdefault(name, {}).update(values)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _ports_of(self, name: str) -> list[int]:
        http = [self.http_ports[name]] if name in self.http_ports else []
        return [self.ports[name], self.metrics_ports[name], *http]

    def _hold(self, name: str) -> None:
        """Keep the kernel from giving ``name``'s ports to outgoing connections while it is not serving on them."""
        self._release(name)
        self._held[name] = [held for port in self._ports_of(name) if (held := hold_port(port)) is not None]

    def _release(self, name: str) -> None:
        for held in self._held.pop(name, []):
            held.close()

    def start_replica(
        self, service: str, peers: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None
    ) -> str:
        """Start one more process of ``service`` beside the first, as a second pod would run: the same database,
        NATS, durable consumers and settings, its own free gRPC, metrics (and for the gateway HTTP) ports.

        Returns its name (``metering-2``, ``metering-3`` ...), which :meth:`address`, :meth:`metrics_url`,
        :meth:`http_url`, :meth:`kill`, :meth:`restart` and :meth:`log_path` take like a service's. ``peers`` maps
        a peer service to the process it should call (``{"ingest": "ingest-2"}``); the rest are the first ones.
        ``env`` is added to the replica's environment only. Stopped with the mesh.
        """
        if service not in ORDER:
            raise KeyError(f"{service} is not one of {', '.join(ORDER)}")
        number = 2
        while f"{service}-{number}" in self.ports:
            number += 1
        name = f"{service}-{number}"
        self.ports[name] = pick_port(0)
        self.metrics_ports[name] = pick_port(0)
        if service == "gateway":
            self.http_ports[name] = pick_port(0)
        self._peers[name] = dict(peers or {})
        self._service_env[name] = dict(env or {})
        self._hold(name)
        self.start_service(name)
        return name

    def start(self) -> Mesh:
        """Start every service in order, each one healthy before the next; on failure stop what was started."""
        try:
            self.write_operator_token()
            for name in self.services:
                self.start_service(name)
        except BaseException:
            self.stop()
            raise
        return self

    def start_service(self, name: str) -> None:
        """Start one service on its port and wait until it reports SERVING (raises :class:`ServiceStartError`)."""
        if self.is_running(name):
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.pid_dir / f"{name}.pid"
        # A run killed with SIGKILL leaves its services running (they have their own session): stop them first.
        # One still owned by a live devstack is in use on this data directory: reclaim raises.
        record = read_record(pid_file)
        if record is not None:
            reclaim(record.pid, record.owner, [f"-m services.{service_of(name)}"], name, self._say,
                    timeout=self.stop_timeout)
        self._say(f"starting {name} on {self.address(name)} (migrations run at start-up) ...")
        log_path = self.log_path(name)
        self.note(name, "devstack: starting", grpc_port=self.ports[name])
        with log_path.open("ab") as log:
            offset = log.tell()
            process = subprocess.Popen(
                [self._python, "-m", f"services.{service_of(name)}"],
                cwd=self._cwd,
                env=self.env_for(name),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Own session: Ctrl-C in the terminal reaches only devstack, which then stops services in order.
                start_new_session=True,
            )
        self._children[name] = _Child(name=name, process=process, log_offset=offset)
        write_record(pid_file, process.pid)
        started = time.monotonic()
        self.wait_healthy(name)
        if service_of(name) == "gateway" and not wait_for_tcp(LOCALHOST, self.http_ports[name], self.health_timeout):
            raise ServiceStartError(
                f"{name} reports SERVING but its HTTP API is not listening on {self.http_url(name)}. "
                f"Last lines of {log_path}:\n{self.log_tail(name)}"
            )
        self._release(name)
        self._say(f"{name} healthy on {self.address(name)} in {time.monotonic() - started:.1f}s (pid {process.pid})")

    def wait_healthy(self, name: str, timeout: float | None = None) -> None:
        """Poll gRPC health (service "") until SERVING; raise if the process exits or ``timeout`` passes."""
        child = self._children[name]
        timeout = self.health_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        status = "UNREACHABLE"
        while True:
            code = child.process.poll()
            if code is not None:
                raise ServiceStartError(
                    f"{name} exited with code {code} before reporting SERVING. "
                    f"Last lines of {self.log_path(name)}:\n{self.log_tail(name)}"
                )
            status = self.health(name)
            if status == "SERVING":
                return
            if time.monotonic() >= deadline:
                raise ServiceStartError(
                    f"{name} did not report SERVING on {self.address(name)} within {timeout:.0f}s "
                    f"(last status: {status}). Last lines of {self.log_path(name)}:\n{self.log_tail(name)}"
                )
            time.sleep(0.2)

    def health(self, name: str, timeout: float = 1.0) -> str:
        """The service's gRPC health status name (``SERVING``, ``NOT_SERVING`` ...) or ``UNREACHABLE``."""
        return health_status(self.address(name), timeout)

    def stop(self) -> None:
        """SIGTERM every running service (gateway first), wait ``stop_timeout``, SIGKILL stragglers."""
        # Reverse start order whatever was restarted since: the gateway goes first, invoicing last.
        names = [name for name in reversed(self.services) if name in self._children]
        names += [name for name in self._children if name not in names]
        running = [self._children[name] for name in names if self.is_running(name)]
        for child in running:
            child.expected_exit = True
            self._say(f"stopping {child.name} (pid {child.process.pid})")
            send_signal(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for child in running:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._say(f"{child.name} did not stop within {self.stop_timeout:.0f}s; sending SIGKILL")
                stop_child(child.process, sig=signal.SIGKILL, timeout=5.0)
        for name in list(self._children):
            (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        self._children.clear()
        for name in list(self._held):
            self._release(name)

    def stop_service(self, name: str) -> int | None:
        """Stop one service gracefully (SIGTERM, SIGKILL after ``stop_timeout``); returns its exit code."""
        return self.kill(name, signal.SIGTERM)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to one service (default SIGKILL: a crash) and wait for it to exit; returns its exit code.

        The exit is expected, so :meth:`unexpected_exits` does not report it.
        """
        child = self._children.get(name)
        if child is None:
            raise KeyError(f"{name} was not started by this mesh")
        child.expected_exit = True
        code = stop_child(child.process, sig=sig, timeout=self.stop_timeout)
        (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        self._hold(name)  # until it is started again on the same ports
        return code

    def restart(self, name: str) -> None:
        """Stop the service if it runs, start it again on the same port, and wait until it is SERVING."""
        if self.is_running(name):
            self.stop_service(name)
        self._children.pop(name, None)
        self.start_service(name)

    def is_running(self, name: str) -> bool:
        """True while the service's process is alive (healthy or not)."""
        child = self._children.get(name)
        return child is not None and child.process.poll() is None

    def pid(self, name: str) -> int | None:
        """The service's pid while it runs."""
        child = self._children.get(name)
        return child.process.pid if child is not None and self.is_running(name) else None

    def unexpected_exits(self) -> list[tuple[str, int]]:
        """Services that exited without being stopped or killed through this mesh, each reported once."""
        exits = []
        for child in self._children.values():
            code = child.process.poll()
            if code is not None and not child.expected_exit and not child.reported:
                child.reported = True
                exits.append((child.name, code))
        return exits

    def __enter__(self) -> Mesh:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()
