"""The whole mesh as processes, exactly as `make run` starts it, on a fresh database and free ports."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator

import pytest

from devstack.mailbox import LocalMailbox
from devstack.mesh import Mesh
from devstack.nats import LocalNats
from devstack.razorpay_sandbox import WEBHOOK_PATH, LocalRazorpaySandbox
from tests.conftest import Infrastructure, create_database, drop_database

# The supplier's GSTIN on the mesh's invoices (Karnataka, as the default supplier state; check character computed
# with gst.gstin_check_character). Without one configured, invoices print no supplier GSTIN.
SUPPLIER_GSTIN = "29AABCB1234C1ZA"


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
        yield platform, sandbox, mailbox
    finally:
        platform.stop()
        sandbox.stop()
        mailbox.stop()
        nats.stop()
        asyncio.run(drop_database(infrastructure.server_url, database_url))


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
