"""The IRP sandbox as `make run` starts it: ``python -m sandboxes.irp`` on a free port, its API user's credentials
and key pairs kept in the data directory across restarts, and invoicing's settings pointing at it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from devstack.irp_sandbox import DEMO_SUPPLIER_GSTIN, LocalIrpSandbox
from services.invoicing.adapters.irp_nic import NicCredentials, NicIrpConnector
from services.invoicing.config import InvoicingSettings
from services.invoicing.domain.einvoice import SellerDetails, dumps, invoice_document
from services.invoicing.domain.gst import gstin_problem
from tests.unit.services.invoicing.adapters import invoice_samples as samples


def _register(local: LocalIrpSandbox) -> str:
    env = local.invoicing_env()
    settings = InvoicingSettings(
        database_url="postgresql://unused/billing", **{k.removeprefix("INVOICING_").lower(): v for k, v in env.items()}
    )
    assert settings.einvoice_enabled and settings.irp_public_key_path is not None
    credentials = NicCredentials(
        settings.supplier_gstin,
        settings.irp_client_id,
        settings.irp_client_secret,
        settings.irp_username,
        settings.irp_password,
        settings.irp_public_key_path.read_text(),
    )
    invoice = samples.inr_intra_state()
    invoice = replace(
        invoice, issue_date=datetime.now(UTC).date(), supplier=replace(invoice.supplier, gstin=DEMO_SUPPLIER_GSTIN)
    )
    seller = SellerDetails("Billing Platform Demo Pvt Ltd", "1 MG Road", "Bengaluru", 560001, "29")

    async def go() -> str:
        connector = NicIrpConnector(settings.irp_base_url, credentials)
        try:
            return (await connector.generate(dumps(invoice_document(invoice, seller)))).irn
        finally:
            await connector.aclose()

    return asyncio.run(go())


def test_the_irp_sandbox_process_is_wired_into_invoicing_and_keeps_its_keys(tmp_path: Path) -> None:
    assert gstin_problem(DEMO_SUPPLIER_GSTIN, "29") is None
    local = LocalIrpSandbox(tmp_path, port=0).start()
    try:
        signing = (local.key_dir / "signing.public.pem").read_text()
        irn = _register(local)
    finally:
        local.stop()
    again = LocalIrpSandbox(tmp_path, port=0)
    assert again.credentials == local.credentials
    again.start()
    try:
        assert (again.key_dir / "signing.public.pem").read_text() == signing
        assert irn in {r["irn"] for r in json.loads((tmp_path / "irp-sandbox.json").read_text())["registrations"]}
    finally:
        again.stop()
