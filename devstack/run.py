"""``python -m devstack run``: PostgreSQL, NATS, every service and the gateway on one machine, with demo data.

Everything started here is stopped here, in reverse order, on Ctrl-C or SIGTERM. State lives in the data
directory, so the next run continues where this one stopped.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from devstack import banner, console
from devstack.demo import DemoData, DemoDataError, ensure_demo_data
from devstack.demo_catalog import ensure_demo_catalog
from devstack.demo_invoice import DemoInvoice, ensure_demo_invoice
from devstack.demo_logins import ensure_demo_logins
from devstack.demo_usage import ensure_demo_usage
from devstack.errors import DevstackError
from devstack.irp_sandbox import REAL_IRP_ENV, LocalIrpSandbox, real_irp_configured
from devstack.logs import LogFollower
from devstack.mailbox import REAL_SMTP_ENV, LocalMailbox, real_smtp_configured
from devstack.mesh import ORDER, REPO_ROOT, Mesh, stop_leftover_services
from devstack.nats import LocalNats
from devstack.postgres import LocalPostgres
from devstack.razorpay_sandbox import REAL_KEYS_ENV, WEBHOOK_PATH, LocalRazorpaySandbox, real_keys_configured
from devstack.state import admin_token, gateway_secrets_key, write_endpoints
from devstack.stripe_sandbox import REAL_KEYS_ENV as STRIPE_KEYS_ENV
from devstack.stripe_sandbox import WEBHOOK_PATH as STRIPE_WEBHOOK_PATH
from devstack.stripe_sandbox import LocalStripe
from devstack.stripe_sandbox import real_keys_configured as real_stripe_keys_configured
from devstack.supervision import Supervisor

DATA_DIR_ENV = "BILLING_DATA_DIR"
DEFAULT_DATA_DIR = REPO_ROOT / ".run" / "data"
ENDPOINTS_FILE = REPO_ROOT / ".run" / "endpoints.json"
DATABASE_NAME = "billing"


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived: stop everything and exit 0."""


@dataclass
class _Started:
    """What this run started, so the finally-block stops exactly that, in reverse order."""

    postgres: LocalPostgres | None = None
    nats: LocalNats | None = None
    sandbox: LocalRazorpaySandbox | None = None
    stripe: LocalStripe | None = None
    irp: LocalIrpSandbox | None = None
    mailbox: LocalMailbox | None = None
    mesh: Mesh | None = None
    follower: LogFollower | None = None
    reported: set[str] = field(default_factory=set)
    stopping: bool = False

    def stop(self) -> None:
        # Stop echoing first: services log NATS disconnects while shutting down, which is expected, not news.
        if self.follower:
            self.follower.stop()
        for step in (self._stop_mesh, self._stop_sandbox, self._stop_irp, self._stop_stripe, self._stop_mailbox,
                     self._stop_nats, self._stop_postgres):
            try:
                step()
            except Exception as error:  # noqa: BLE001 - the remaining servers must still be stopped
                console.warn(f"while stopping: {error}")

    def _stop_mesh(self) -> None:
        if self.mesh:
            self.mesh.stop()

    def _stop_sandbox(self) -> None:
        if self.sandbox:
            self.sandbox.stop()

    def _stop_irp(self) -> None:
        if self.irp:
            self.irp.stop()

    def _stop_stripe(self) -> None:
        if self.stripe:
            self.stripe.stop()

    def _stop_mailbox(self) -> None:
        if self.mailbox:
            self.mailbox.stop()

    def _stop_nats(self) -> None:
        if self.nats:
            self.nats.stop()

    def _stop_postgres(self) -> None:
        if self.postgres:
            self.postgres.stop()


def default_data_dir() -> Path:
    """``$BILLING_DATA_DIR`` or ``<repo>/.run/data``."""
    from_env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(from_env).expanduser().absolute() if from_env else DEFAULT_DATA_DIR


def run(
    data_dir: Path, services: Sequence[str] = ORDER, echo: str = "errors", endpoints_file: Path = ENDPOINTS_FILE
) -> int:
    """Start the stack, print where everything is, supervise until interrupted; returns the exit code."""
    data_dir = data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    started = _Started()

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        # Only the first signal interrupts. People press Ctrl-C twice, and `timeout`/`make` forward signals:
        # a second exception raised inside the shutdown would cut it short and leave servers running.
        if started.stopping:
            console.say(f"{name} ignored: already stopping, please wait")
            return
        started.stopping = True
        # Said here, not where the exception lands: a half-started mesh stops its services on the way up.
        console.say(f"{name} received: stopping everything")
        if started.follower:
            started.follower.stop()  # services log NATS disconnects while stopping: expected, not news
        raise Interrupted(name)

    # Not restored on the way out: a late Ctrl-C after the orderly stop must not turn exit 0 into a crash.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, interrupt)
    code = 0
    try:
        console.say(f"data directory: {data_dir}")
        # Leftovers of a killed run go in the usual order too: services before the servers they use.
        stop_leftover_services(data_dir, console.say)
        database_url = _database(data_dir, started)
        nats_url = _nats(data_dir, started)
        token = admin_token(data_dir, console.say)
        mesh = started.mesh = Mesh(data_dir, database_url, nats_url, token, services=services,
                                   gateway_secrets_key=gateway_secrets_key(data_dir, console.say))
        _razorpay(mesh, data_dir, started)
        _stripe(mesh, data_dir, started)
        _irp(mesh, data_dir, started)
        _mailbox(mesh, data_dir, started)
        # A local run's webhook receivers (a demo receiver, a developer's tunnel) listen on private addresses,
        # which production refuses.
        mesh.add_env("notification", {"NOTIFICATION_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true"})
        # Metering archives old, invoiced months of events here before deleting them (docs/operations.md).
        mesh.add_env("metering", {"METERING_RETENTION_ARCHIVE_DIR": str(data_dir / "event-archives")})
        started.follower = LogFollower({name: mesh.log_path(name) for name in services}, echo).start()
        if echo != "none":
            console.say(
                f"service log lines at {'warning level and above' if echo == 'errors' else 'all levels'} "
                f"are echoed here as '<service> | ...'; full logs in {mesh.log_dir}"
            )
        mesh.start()
        notes: list[str] = []
        demo, invoice = _demo(mesh, data_dir, token, notes)
        endpoints = _endpoints(mesh, started, database_url, nats_url, token, demo, invoice)
        if demo is not None:
            endpoints["demo"]["logins"] = _demo_logins(mesh, data_dir, token, demo, notes)
        write_endpoints(endpoints_file, endpoints)
        print(
            banner.render(
                endpoints, log_dir=mesh.log_dir, data_dir=data_dir, endpoints_file=endpoints_file, notes=notes
            ),
            flush=True,
        )
        _supervise(started)
    except Interrupted:
        pass
    except DevstackError as error:
        console.warn(str(error))
        console.warn("start-up failed; stopping what was started")
        code = 1
    finally:
        started.stopping = True
        started.stop()
    console.say(f"stopped. State is kept in {data_dir}; `make run` continues from it.")
    return code


def _database(data_dir: Path, started: _Started) -> str:
    from_env = os.environ.get("DATABASE_URL", "").strip()
    if from_env:
        console.say(f"using PostgreSQL from $DATABASE_URL: {_redact(from_env)}")
        return from_env
    postgres = started.postgres = LocalPostgres(data_dir / "postgres")
    postgres.start()
    postgres.ensure_database(DATABASE_NAME)
    return postgres.url(DATABASE_NAME)


def _nats(data_dir: Path, started: _Started) -> str:
    from_env = os.environ.get("NATS_URL", "").strip()
    if from_env:
        console.say(f"using NATS from $NATS_URL: {_redact(from_env)}")
        return from_env
    nats = started.nats = LocalNats(data_dir / "nats")
    nats.start()
    return nats.url


def _razorpay(mesh: Mesh, data_dir: Path, started: _Started) -> None:
    """The local Razorpay sandbox, wired into payments and the gateway, unless real keys are configured."""
    if "payments" not in mesh.services:
        return
    if real_keys_configured():
        console.say(f"using Razorpay with the keys in ${REAL_KEYS_ENV} (no sandbox)")
        return
    sandbox = started.sandbox = LocalRazorpaySandbox(data_dir, mesh.gateway_url + WEBHOOK_PATH).start()
    mesh.add_env("payments", sandbox.payments_env())
    mesh.add_env("gateway", sandbox.gateway_env())


def _irp(mesh: Mesh, data_dir: Path, started: _Started) -> None:
    """The local IRP sandbox with e-invoicing on for the demo supplier, unless a real IRP is configured."""
    if real_irp_configured():
        console.say(f"e-invoicing with the IRP credentials in ${REAL_IRP_ENV} (no sandbox)")
        return
    irp = started.irp = LocalIrpSandbox(data_dir).start()
    mesh.add_env("invoicing", irp.invoicing_env())


def _stripe(mesh: Mesh, data_dir: Path, started: _Started) -> None:
    """The local Stripe, wired into payments and the gateway (organisations choose it per organisation; Razorpay
    stays the default), unless a real Stripe key is configured."""
    if "payments" not in mesh.services:
        return
    if real_stripe_keys_configured():
        console.say(f"using Stripe with the key in ${STRIPE_KEYS_ENV} (no local Stripe)")
        return
    local = started.stripe = LocalStripe(data_dir, mesh.gateway_url + STRIPE_WEBHOOK_PATH).start()
    mesh.add_env("payments", local.payments_env())
    mesh.add_env("gateway", local.gateway_env())


def _mailbox(mesh: Mesh, data_dir: Path, started: _Started) -> None:
    """The local mailbox, wired into notification, unless an SMTP server is configured."""
    if "notification" not in mesh.services:
        return
    if real_smtp_configured():
        console.say(f"notification sends through the SMTP server in ${REAL_SMTP_ENV} (no local mailbox)")
        return
    mailbox = started.mailbox = LocalMailbox(data_dir).start()
    mesh.add_env("notification", mailbox.notification_env())


def _demo(
    mesh: Mesh, data_dir: Path, token: str, notes: list[str]
) -> tuple[DemoData | None, DemoInvoice | None]:
    """Demo data through the gateway; a failure is reported loudly but does not take the platform down."""
    if "gateway" not in mesh.services:
        notes.append("the gateway is not in this run's services, so no demo data was created")
        return None, None
    try:
        demo = ensure_demo_data(mesh.gateway_url, token, data_dir / "demo.json", console.say)
    except (DemoDataError, httpx.HTTPError) as error:
        console.warn(f"could not create demo data: {error}")
        notes.append(
            f"no demo data (see the warning above); it is retried on the next start. Gateway log: "
            f"{mesh.log_path('gateway')}"
        )
        return None, None
    try:
        ensure_demo_usage(mesh.gateway_url, token, demo, console.say)
    except (DemoDataError, httpx.HTTPError) as error:
        console.warn(f"could not create demo metrics and events: {error}")
        notes.append("no demo usage (see the warning above); it is retried on the next start")
    try:
        ensure_demo_catalog(mesh.gateway_url, token, demo, console.say)
    except (DemoDataError, httpx.HTTPError) as error:
        console.warn(f"could not create the demo plans and subscriptions: {error}")
        notes.append("no demo catalog (see the warning above); it is retried on the next start")
        return demo, None
    invoice = None
    if "payments" in mesh.services and "invoicing" in mesh.services:
        try:
            invoice = ensure_demo_invoice(mesh.gateway_url, token, mesh.database_url, console.say)
        except (DemoDataError, httpx.HTTPError, OSError) as error:
            console.warn(f"could not create the demo invoice to pay: {error}")
            notes.append("no demo invoice to pay (see the warning above); it is retried on the next start")
    return demo, invoice


def _demo_logins(mesh: Mesh, data_dir: Path, token: str, demo: DemoData, notes: list[str]) -> dict | None:
    """The dashboard's demo sign-ins (a customer and an operator); a failure is a note, not a stop."""
    try:
        return ensure_demo_logins(mesh.gateway_url, token, demo.organisation_id, data_dir / "demo-logins.json",
                                  console.say)
    except (DemoDataError, httpx.HTTPError) as error:
        console.warn(f"could not create the dashboard's demo logins: {error}")
        notes.append("no demo dashboard logins (see the warning above); they are retried on the next start")
        return None


def _endpoints(
    mesh: Mesh, started: _Started, database_url: str, nats_url: str, token: str, demo: DemoData | None,
    invoice: DemoInvoice | None = None,
) -> dict[str, Any]:
    endpoints: dict[str, Any] = {
        "gateway": mesh.gateway_url if "gateway" in mesh.services else None,
        "services": {name: mesh.address(name) for name in ORDER},
        "metrics": {name: mesh.metrics_url(name) for name in mesh.services},
        "running": list(mesh.services),
        "admin_token": token,
        # The operator's mesh credential for calling a service's gRPC by hand (x-billing-mesh: operator:<token>).
        "mesh_operator_token_file": str(mesh.operator_token_file),
        "demo": None,
        "database_url": database_url,
        "nats_url": nats_url,
        "nats_monitor_url": started.nats.monitor_url if started.nats else None,
        "razorpay_sandbox": started.sandbox.url if started.sandbox else None,
        "irp_sandbox": started.irp.url if started.irp else None,
        "local_stripe": started.stripe.url if started.stripe else None,
        "mailbox": started.mailbox.endpoints() if started.mailbox else None,
        "logs": str(mesh.log_dir),
        "pid": os.getpid(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if demo is not None:
        endpoints["demo"] = {
            "organisation_id": demo.organisation_id,
            "project_id": demo.project_id,
            "api_key_id": demo.api_key_id,
            "api_key": demo.api_key,
        }
        if invoice is not None:
            endpoints["demo"]["invoice"] = {"id": invoice.invoice_id, "number": invoice.number,
                                            "total": invoice.total, "status": invoice.status,
                                            "checkout_url": invoice.checkout_url}
    return endpoints


def _supervise(started: _Started, every_seconds: float = 0.5) -> None:
    """Watch the processes until interrupted. A service that crashes is restarted with backoff (see
    :mod:`devstack.supervision`) while the others keep running; a server's death is printed loudly."""
    assert started.mesh is not None
    supervisor = Supervisor(started.mesh)
    while True:
        time.sleep(every_seconds)
        supervisor.check()
        sandbox = started.sandbox
        if sandbox is not None and not sandbox.running and "sandbox" not in started.reported:
            started.reported.add("sandbox")
            console.warn(f"the Razorpay sandbox exited unexpectedly; online payments fail until it is back. "
                         f"Its log: {sandbox.log_path}")
        stripe = started.stripe
        if stripe is not None and not stripe.running and "stripe" not in started.reported:
            started.reported.add("stripe")
            console.warn(f"the local Stripe exited unexpectedly; Stripe payments fail until it is back. "
                         f"Its log: {stripe.log_path}")
        irp = started.irp
        if irp is not None and not irp.running and "irp" not in started.reported:
            started.reported.add("irp")
            console.warn(f"the IRP sandbox exited unexpectedly; e-invoices wait for their IRN until it is back. "
                         f"Its log: {irp.log_path}")
        mailbox = started.mailbox
        if mailbox is not None and not mailbox.running and "mailbox" not in started.reported:
            started.reported.add("mailbox")
            console.warn(f"the mailbox exited unexpectedly; notification cannot send email until it is back. "
                         f"Its log: {mailbox.log_path}")
        for label, server in (("PostgreSQL", started.postgres), ("NATS", started.nats)):
            if server is not None and not server.running and label not in started.reported:
                started.reported.add(label)
                console.warn(
                    f"{label} exited unexpectedly; services report NOT_SERVING until it is back. "
                    f"Its log: {server.log_path}"
                )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
