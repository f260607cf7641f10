"""The whole mesh as processes, exactly as `make run` starts it, on a fresh database and free ports."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.mailbox import LocalMailbox
from devstack.mesh import Mesh
from devstack.nats import LocalNats
from devstack.razorpay_sandbox import WEBHOOK_PATH, LocalRazorpaySandbox
from tests.conftest import Infrastructure, create_database, drop_database

# The supplier's GSTIN on the mesh's invoices (Karnataka, as the default supplier state; check character computed
# with gst.gstin_check_character). Without one configured, invoices print no supplier GSTIN.
SUPPLIER_GSTIN = "29AABCB1234C1ZA"


# Secrets the e2e tests made or were given (API keys, staff tokens, passwords, session cookies): none may appear in
# any service's log. The platform's own (admin token, mesh tokens, Razorpay keys) are added by ``platform``.
SECRETS: set[str] = set()
# The part of a ``bk_<id>_<secret>``/``bt_<id>_<secret>`` credential that is secret: the id may be logged.
_CREDENTIAL = re.compile(r"^b[kt]_[A-Za-z0-9]{8}_([A-Za-z0-9]{32})$")


def remember_secret(value: str) -> str:
    """Record a secret a test made, so no log may contain it; returns it. For ``bk_``/``bt_`` credentials the
    secret part after the id is recorded too (a log that printed it without the prefix leaks it as well)."""
    SECRETS.add(value)
    if match := _CREDENTIAL.match(value):
        SECRETS.add(match.group(1))
    return value


def leaked_secrets(log_dir: Path, secrets_: set[str]) -> list[str]:
    """``<log file>: <secret's first 4 characters>...`` for every secret (8 characters or more) that appears in a
    log file under ``log_dir``."""
    found = []
    for path in sorted(log_dir.rglob("*.log")):
        text = path.read_text(errors="replace")
        for secret in sorted(secrets_):
            if len(secret) >= 8 and secret in text:
                found.append(f"{path.name}: {secret[:4]}...")
    return found


def cli_environment() -> dict[str, str]:
    """The environment for a ``billing_cli`` child: ours, minus the .run/endpoints.json a developer's `make run`
    writes into the checkout, which the CLI would otherwise read for what the flags leave out."""
    return {**os.environ, "BILLING_ENDPOINTS": "/nonexistent/endpoints.json"}


@pytest.fixture(scope="session")
def platform(infrastructure: Infrastructure, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Mesh, LocalRazorpaySandbox, LocalMailbox]]:
    database_url = asyncio.run(create_database(infrastructure.server_url, prefix="billing_e2e"))
    # A NATS of its own: on the session's, the mesh's metering would share BILLING_INGEST's durable consumer with
    # the in-process metering of the integration tests, and each would count only part of the other's events.
    nats = LocalNats(tmp_path_factory.mktemp("mesh-nats"), port=0, monitor_port=None,
                     say=lambda message: print(f"[mesh] {message}")).start()
    platform = Mesh(
        tmp_path_factory.mktemp("mesh"),
        database_url,
        nats.url,
        admin_token=secrets.token_urlsafe(24),
        prefer_default_ports=False,
        # The tests close billing periods themselves, once their usage is in; the monthly scheduler would close
        # last month on its own timing (at start-up, then every 5 minutes until nothing is left to close).
        service_env={"invoicing": {"INVOICING_SUPPLIER_GSTIN": SUPPLIER_GSTIN, "INVOICING_SCHEDULER_ENABLED": "false"}},
        say=lambda message: print(f"[mesh] {message}"),
    )
    # Payments collects through the Razorpay sandbox, a process of its own, whose webhooks go to the gateway.
    sandbox = LocalRazorpaySandbox(tmp_path_factory.mktemp("razorpay"), platform.gateway_url + WEBHOOK_PATH, port=0,
                                   say=lambda message: print(f"[mesh] {message}"))
    # Notification sends through the local mailbox, as under `make run`; tests read what arrived through its API.
    mailbox = LocalMailbox(tmp_path_factory.mktemp("mailbox"), smtp_port=0, web_port=0,
                           say=lambda message: print(f"[mesh] {message}"))
    try:
        sandbox.start()
        mailbox.start()
        # A short send lease, so the kill -9 test sees a message its dead sender held become UNKNOWN quickly.
        platform.add_env("notification", {**mailbox.notification_env(), "NOTIFICATION_SEND_LEASE_SECONDS": "10",
                                          "NOTIFICATION_WORKER_INTERVAL_SECONDS": "0.2",
                                          # The tests' webhook receivers listen on 127.0.0.1, as under make run.
                                          "NOTIFICATION_WEBHOOKS_ALLOW_PRIVATE_ADDRESSES": "true"})
        platform.add_env("payments", {**sandbox.payments_env(), "PAYMENTS_WORKER_INTERVAL_SECONDS": "0.2",
                                      "PAYMENTS_DAILY_RECONCILIATION": "false"})
        # The tests make more admin writes a minute with one token than `make run`'s limit admits.
        platform.add_env("gateway", {**sandbox.gateway_env(), "GATEWAY_ADMIN_WRITE_LIMIT_PER_MINUTE": "0"})
        platform.start()
        SECRETS.update({platform.admin_token, *platform.mesh_tokens.values(), platform.gateway_secrets_key,
                        sandbox.keys["key_secret"], sandbox.keys["webhook_secret"]})
        yield platform, sandbox, mailbox
    finally:
        platform.stop()
        sandbox.stop()
        mailbox.stop()
        nats.stop()
        asyncio.run(drop_database(infrastructure.server_url, database_url))
    # Every service's log of the whole session (issue 13): no token, key, password or cookie a test used.
    leaks = leaked_secrets(platform.log_dir, SECRETS)
    assert not leaks, f"secrets in the mesh's logs: {leaks}"


@pytest.fixture(scope="session")
def mesh(platform: tuple[Mesh, LocalRazorpaySandbox, LocalMailbox]) -> Mesh:
    return platform[0]


@pytest.fixture(scope="session")
def razorpay_sandbox(platform: tuple[Mesh, LocalRazorpaySandbox, LocalMailbox]) -> LocalRazorpaySandbox:
    """The mesh's Razorpay sandbox process; tests drive it through its control API at ``.url``."""
    return platform[1]


@pytest.fixture(scope="session")
def mailbox(platform: tuple[Mesh, LocalRazorpaySandbox, LocalMailbox]) -> LocalMailbox:
    """The mesh's mailbox process, where notification sends; read it with
    ``sandboxes.smtp.MailboxControl(mailbox.url)`` (messages, wait_for, inject faults)."""
    return platform[2]
