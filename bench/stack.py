"""The platform the benchmark drives: a fresh one of its own (default), or the one `make run` keeps running.

A fresh stack lives in a temporary directory on free ports, so it never touches a running `make run`; it is
built with the devstack pieces `make run` uses (LocalPostgres, LocalNats, Mesh) and removed afterwards. Either
way the benchmark gets its own organisation, project, API key and metrics through the admin API.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from sqlalchemy.engine import make_url

from billing_runtime import mesh as trust
from devstack.demo import ensure_demo_data
from devstack.mailbox import LocalMailbox
from devstack.mesh import ORDER, Mesh
from devstack.nats import LocalNats
from devstack.postgres import LocalPostgres
from devstack.processes import read_record
from devstack.razorpay_sandbox import WEBHOOK_PATH, LocalRazorpaySandbox
from devstack.run import ENDPOINTS_FILE, default_data_dir


def channel(address: str, **kwargs: object) -> grpc.aio.Channel:
    """A channel to a service of the stack being driven, presenting its operator's mesh credential (which
    :func:`fresh_stack` and :func:`running_stack` make the default)."""
    return trust.aio_channel(address, trust.current_identity(), **kwargs)


COUNT_METRIC = "bench.requests"
PROBE_METRIC = "bench.probe"


@dataclass
class Tenant:
    organisation_id: str
    project_id: str
    api_key: str


@dataclass
class Stack:
    ingest_address: str
    metering_address: str
    gateway_url: str
    admin_token: str
    database_url: str
    tenant: Tenant | None = None
    mesh: Mesh | None = None  # None when driving someone else's `make run`
    pid_dir: Path | None = None
    postgres_pid: int | None = None  # a fresh stack's postmaster
    nats_url: str = ""
    nats_pid: int | None = None
    payments_address: str = ""
    invoicing_address: str = ""
    razorpay: LocalRazorpaySandbox | None = None  # a fresh stack's sandbox, when asked for
    mailbox: LocalMailbox | None = None  # a fresh stack's local SMTP server, when asked for
    postgres: LocalPostgres | None = None  # a fresh stack's servers, for restarting them (bench/chaos.py)
    nats: LocalNats | None = None
    notes: list[str] = field(default_factory=list)
    # The operator's mesh credential: what the benchmark calls services' gRPC with (bench.stack.channel).
    operator: trust.Identity | None = None

    @property
    def owns_mesh(self) -> bool:
        return self.mesh is not None

    def service_pids(self) -> dict[str, int]:
        """The pid of every running service process."""
        if self.mesh is not None:
            return {name: pid for name in self.mesh.services if (pid := self.mesh.pid(name)) is not None}
        pids = {}
        for name in ORDER:
            record = read_record(self.pid_dir / f"{name}.pid") if self.pid_dir else None
            if record is not None:
                pids[name] = record.pid
        return pids

    def server_url(self) -> str:
        """The same PostgreSQL server, administrative database (for the scratch database of the bare insert)."""
        return make_url(self.database_url).set(database="postgres").render_as_string(hide_password=False)


@contextmanager
def fresh_stack(
    say: Callable[[str], None], service_env: Mapping[str, Mapping[str, str]] | None = None, *,
    razorpay: bool = False, mailbox: bool = False,
) -> Iterator[Stack]:
    """PostgreSQL, NATS and every service in a temporary directory on free ports; removed on the way out.
    ``service_env[name]`` is added to one service's environment. With ``razorpay`` the local Razorpay sandbox
    runs too, wired into payments (its API) and the gateway (its webhook secret) as `make run` wires it."""
    root = Path(tempfile.mkdtemp(prefix="billing-bench-"))
    postgres = nats = mesh = sandbox = mail = None
    try:
        postgres = LocalPostgres(root / "postgres", port=0, say=say).start()
        postgres.ensure_database("billing")
        nats = LocalNats(root / "nats", port=0, monitor_port=None, say=say).start()
        mesh = Mesh(
            root / "mesh",
            postgres.url("billing"),
            nats.url,
            admin_token=secrets.token_urlsafe(24),
            prefer_default_ports=False,
            service_env=service_env,
            say=say,
        )
        # Benchmarks make admin writes as fast as they can with one token: no write limit.
        mesh.add_env("gateway", {"GATEWAY_ADMIN_WRITE_LIMIT_PER_MINUTE": "0"})
        if razorpay:
            sandbox = LocalRazorpaySandbox(root / "razorpay", mesh.gateway_url + WEBHOOK_PATH, port=0, say=say,
                                           keep_state=False).start()
            mesh.add_env("payments", sandbox.payments_env())
            mesh.add_env("gateway", sandbox.gateway_env())
        if mailbox:
            mail = LocalMailbox(root / "mailbox", smtp_port=0, web_port=0, say=say, keep_state=False).start()
            mesh.add_env("notification", mail.notification_env())
        mesh.start()
        trust.use_by_default(mesh.operator)
        yield Stack(
            operator=mesh.operator,
            ingest_address=mesh.address("ingest"),
            metering_address=mesh.address("metering"),
            gateway_url=mesh.gateway_url,
            admin_token=mesh.admin_token,
            database_url=postgres.url("billing"),
            mesh=mesh,
            postgres_pid=postgres.pid,
            nats_url=nats.url,
            nats_pid=nats.pid,
            payments_address=mesh.address("payments"),
            invoicing_address=mesh.address("invoicing"),
            razorpay=sandbox,
            mailbox=mail,
            postgres=postgres,
            nats=nats,
        )
    finally:
        for server in (mesh, sandbox, mail, nats, postgres):
            if server is not None:
                try:
                    server.stop()
                except Exception as error:  # noqa: BLE001 - the others must still be stopped
                    say(f"while stopping: {error}")
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_stack(endpoints_file: Path = ENDPOINTS_FILE) -> Iterator[Stack]:
    """The stack of a running `make run`, as its endpoints.json describes it."""
    try:
        endpoints = json.loads(endpoints_file.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"--use-running: cannot read {endpoints_file} ({error}); start `make run` first") from None
    if not endpoints.get("gateway"):
        raise SystemExit(f"--use-running: {endpoints_file} names no gateway; is `make run` running?")
    token_file = endpoints.get("mesh_operator_token_file")
    operator = trust.Identity(trust.OPERATOR, Path(token_file).read_text().strip()) if token_file else None
    trust.use_by_default(operator)
    yield Stack(
        operator=operator,
        ingest_address=endpoints["services"]["ingest"],
        metering_address=endpoints["services"]["metering"],
        invoicing_address=endpoints["services"]["invoicing"],
        gateway_url=endpoints["gateway"],
        admin_token=endpoints["admin_token"],
        database_url=endpoints["database_url"],
        pid_dir=default_data_dir() / "pids",
    )


def create_tenant(stack: Stack, say: Callable[[str], None]) -> Tenant:
    """An organisation, a project, an API key and the two metrics, through the gateway's admin API."""
    state = Path(tempfile.mkdtemp(prefix="billing-bench-tenant-"))
    try:
        demo = ensure_demo_data(stack.gateway_url, stack.admin_token, state / "tenant.json", say)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    headers = {"Authorization": f"Bearer {stack.admin_token}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=15.0) as client:
        for code, aggregation in ((COUNT_METRIC, "count"), (PROBE_METRIC, "max")):
            body = {"organisation_id": demo.organisation_id, "code": code, "name": code, "aggregation": aggregation}
            response = client.post("/api/v1/admin/metrics", json=body)
            if response.status_code not in (200, 201):
                raise SystemExit(f"creating metric {code}: HTTP {response.status_code} {response.text[:300]}")
    stack.tenant = Tenant(demo.organisation_id, demo.project_id, demo.api_key)
    return stack.tenant
