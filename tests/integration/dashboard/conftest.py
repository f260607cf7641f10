"""The dashboard in a real headless Chromium (Debian's, driven by Playwright through ``executable_path``) against
a gateway in this process in front of the real ingest, invoicing, metering and payments services (payments at a
Razorpay sandbox). Chromium missing fails
the session (``devstack/chromium.py`` says what to install): never a skip. Screenshots, first-paint figures and
axe results are saved under ``<basetemp>/dashboard-artefacts/``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from billing_runtime.service import Runtime
from devstack import chromium
from services.gateway.__main__ import DEFINITION as GATEWAY
from tests.conftest import running_service
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, payments, razorpay

# The module's Razorpay sandbox and a payments service in front of it (the gateway tests' own fixtures).
__all__ = ["payments", "razorpay"]


@pytest.fixture(scope="module")
async def dashboard_gateway(database_url, nats_url, ingest, invoicing, metering, payments, refused_address
                            ) -> AsyncIterator[Runtime]:
    # Plain http on 127.0.0.1, as `make run` serves it: the session cookie without the Secure flag. Payments
    # (with the module's Razorpay sandbox, whose hosted checkout Pay opens) for the customer's Pay.
    async with running_service(
        GATEWAY, database_url, nats_url, admin_token=GATEWAY_ADMIN_TOKEN, http_port=0, cookie_secure=False,
        ingest_address=ingest.address, invoicing_address=invoicing.address, metering_address=metering.address,
        payments_address=payments.address, notification_address=refused_address,
    ) as runtime:
        yield runtime


@pytest.fixture(scope="module")
def dashboard_url(dashboard_gateway) -> str:
    return dashboard_gateway.http_address


@pytest.fixture
async def admin(dashboard_url) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dashboard_url, timeout=30,
                                 headers={"Authorization": f"Bearer {GATEWAY_ADMIN_TOKEN}"}) as client:
        yield client


@pytest.fixture(scope="session")
def artefacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dashboard-artefacts", numbered=False)


@pytest.fixture(scope="session")
def figures(artefacts) -> dict:
    """First paint and axe results per page, written to figures.json at the end."""
    found: dict = {}
    yield found
    (artefacts / "figures.json").write_text(json.dumps(found, indent=2, sort_keys=True))


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    executable = chromium.find()
    if executable is None:
        pytest.fail(chromium.WHAT_TO_INSTALL)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True,
                                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            await launched.close()
