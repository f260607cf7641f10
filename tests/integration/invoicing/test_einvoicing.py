"""E-invoicing against the IRP sandbox process (``python -m sandboxes.irp``, driven through its control API), through
an invoicing service with e-invoicing on: an invoice run issues a B2B invoice, the registrar registers it, the PDF
carries a QR that decodes to the IRP's signed JWT; a lost answer comes back as a duplicate (2150) resolved by Get
IRN; an outage is retried with backoff; voiding cancels the IRN within 24 hours and is refused after; the 30-day
rule blocks before sending; operators list and retry; credit notes register as CRN."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import grpc
import jwt
import pypdfium2
import pytest
import sqlalchemy as sa
import zxingcpp

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing_runtime.service import Runtime
from sandboxes.irp import IrpControl
from services.invoicing.__main__ import DEFINITION as INVOICING
from services.invoicing.__main__ import einvoice_policy
from services.invoicing.adapters.irp_nic import NicCredentials, NicIrpConnector
from services.invoicing.adapters.tables import einvoice_registrations
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.domain.einvoice_checks import TurnoverBand
from services.invoicing.service.einvoicing import EinvoiceRegistrar
from tests.conftest import mesh_channel, running_service
from tests.integration.helpers import expect_rpc_error
from tests.integration.invoicing.conftest import create_organisation, create_plan, run_to_completion, subscribe, terms
from tests.integration.invoicing.test_settlement import SEPTEMBER

SUPPLIER_GSTIN = "29AABCB1234C1ZA"
BUYER_GSTIN = "29AAACR5055K1Z3"
ADDRESS = "42 Residency Road\nBengaluru 560025"
REGISTERED = pb.EINVOICE_REGISTRATION_STATUS_REGISTERED


@dataclass
class IrpProcess:
    """``python -m sandboxes.irp`` started for this module: where it listens, its credentials and keys."""

    url: str
    key_dir: Path
    control: IrpControl
    client_id: str = "it-client"
    client_secret: str = "it-secret"
    username: str = "it-user"
    password: str = "it-password"

    @property
    def signing_public_key(self) -> str:
        return (self.key_dir / "signing.public.pem").read_text()

    @property
    def auth_public_key(self) -> str:
        return (self.key_dir / "auth.public.pem").read_text()

    async def irns(self) -> dict[str, dict]:
        return {r["irn"]: r for r in await self.control.irns()}


@pytest.fixture(scope="module")
async def irp(tmp_path_factory) -> AsyncIterator[IrpProcess]:
    key_dir = tmp_path_factory.mktemp("irp-keys")
    made = IrpProcess("", key_dir, None)  # type: ignore[arg-type] - the defaults, before it listens
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandboxes.irp",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--key-dir",
        str(key_dir),
        "--client-id",
        made.client_id,
        "--client-secret",
        made.client_secret,
        "--username",
        made.username,
        "--password",
        made.password,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert line.startswith("irp sandbox listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        running = IrpProcess(url, key_dir, IrpControl(url))
        yield running
        await running.control.aclose()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


@pytest.fixture(scope="module")
async def einvoicing(database_url, nats_url, metering_port, refused_address, metering, irp) -> AsyncIterator[Runtime]:
    """A second invoicing service on the same database, with e-invoicing on and the sandbox as its IRP."""
    keys = irp.key_dir
    async with running_service(
        INVOICING,
        database_url,
        nats_url,
        metering_address=f"127.0.0.1:{metering_port}",
        scheduler_enabled=False,
        payments_address=refused_address,
        einvoice_enabled=True,
        supplier_gstin=SUPPLIER_GSTIN,
        irp_base_url=irp.url,
        irp_client_id=irp.client_id,
        irp_client_secret=irp.client_secret,
        irp_username=irp.username,
        irp_password=irp.password,
        irp_public_key_path=keys / "auth.public.pem",
        irp_signing_public_key_path=keys / "signing.public.pem",
        einvoice_interval_seconds=0.05,
        einvoice_retry_initial_seconds=0.2,
    ) as runtime:
        yield runtime


@pytest.fixture(scope="module")
async def stub(einvoicing: Runtime) -> AsyncIterator[invoicing_pb2_grpc.InvoicingServiceStub]:
    async with mesh_channel(einvoicing.address) as channel:
        yield invoicing_pb2_grpc.InvoicingServiceStub(channel)


async def issue(stub, invoicing, *, gstin: str = BUYER_GSTIN, base_fee: str = "10000") -> pb.Invoice:
    """A new organisation's September invoice, issued by an invoice run of the e-invoicing service."""
    organisation_id = await create_organisation(stub, invoicing, since=SEPTEMBER, gstin=gstin, billing_address=ADDRESS)
    plan = await create_plan(stub, terms(currency="INR", base_fee=base_fee, sac_code="998315", charges=[]))
    await subscribe(stub, organisation_id, plan.latest_version.id, start_date="2026-09-01")
    run = await run_to_completion(stub, "2026-09", organisation_id)
    assert run.invoiced == 1, run
    return (await stub.ListInvoices(pb.ListInvoicesRequest(organisation_id=organisation_id))).invoices[0]


async def registration(
    stub, invoice_id: str, status: int | None = None, timeout: float = 10
) -> pb.EinvoiceRegistration:
    async with asyncio.timeout(timeout):
        while True:
            listed = await stub.ListEinvoiceRegistrations(pb.ListEinvoiceRegistrationsRequest(page_size=500))
            found = [r for r in listed.registrations if r.document_id == invoice_id]
            if found and (status is None or found[0].status == status):
                return found[0]
            await asyncio.sleep(0.05)


def qr_of_first_page(pdf: bytes) -> list[str]:
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=3).to_pil()
    return [found.text for found in zxingcpp.read_barcodes(image)]


def signed_qr_claims(pdf: bytes, irp: IrpProcess) -> dict:
    """The claims of the one QR code on the PDF's first page, once its JWT is verified with the IRP's signing key
    (NIC signs them as a JSON string in ``data``)."""
    (code,) = qr_of_first_page(pdf)
    return json.loads(jwt.decode(code, irp.signing_public_key, algorithms=["RS256"])["data"])


async def test_register_and_print_the_signed_qr(stub, invoicing, irp):
    invoice = await issue(stub, invoicing)
    registered = await registration(stub, invoice.id, REGISTERED)
    assert registered.irn and registered.ack_no and registered.document_number == invoice.number
    assert registered.organisation_id == invoice.organisation_id
    # Narrowed to the organisation, or to the invoice (what a customer's invoice page shows).
    for narrowed in ({"organisation_id": invoice.organisation_id}, {"invoice_id": invoice.id}):
        listed = await stub.ListEinvoiceRegistrations(pb.ListEinvoiceRegistrationsRequest(**narrowed))
        assert [r.document_id for r in listed.registrations] == [invoice.id], narrowed
    rendered = await stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id, format=pb.INVOICE_FORMAT_PDF))
    claims = signed_qr_claims(rendered.content, irp)
    assert claims["SellerGstin"] == SUPPLIER_GSTIN and claims["BuyerGstin"] == BUYER_GSTIN
    assert (claims["DocNo"], claims["DocTyp"], claims["Irn"]) == (invoice.number, "INV", registered.irn)
    assert claims["TotInvVal"] == invoice.total_minor / 100 == 11800.0  # 10,000.00 + 18 % GST
    assert (claims["ItemCnt"], claims["MainHsnCode"]) == (1, "998315")
    assert claims["DocDt"] == datetime.strptime(invoice.issue_date, "%Y-%m-%d").strftime("%d/%m/%Y")
    html = await stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id, format=pb.INVOICE_FORMAT_HTML))
    assert f"IRN: {registered.irn}".encode() in html.content


async def test_b2c_is_not_einvoiced(stub, invoicing):
    invoice = await issue(stub, invoicing, gstin="")
    listed = await stub.ListEinvoiceRegistrations(pb.ListEinvoiceRegistrationsRequest(page_size=500))
    assert invoice.id not in {r.document_id for r in listed.registrations}
    rendered = await stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id))
    assert qr_of_first_page(rendered.content) == []


async def test_outage_is_retried_and_the_pdf_waits_for_the_irn(stub, invoicing, irp):
    await irp.control.outage(-1)
    try:
        invoice = await issue(stub, invoicing)
        async with asyncio.timeout(10):
            while not (pending := await registration(stub, invoice.id)).last_error:  # noqa: ASYNC110 - polls gRPC
                await asyncio.sleep(0.05)
        assert pending.status == pb.EINVOICE_REGISTRATION_STATUS_PENDING and "503" in pending.last_error
        await expect_rpc_error(
            stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id)), grpc.StatusCode.UNAVAILABLE
        )
    finally:
        await irp.control.outage(0)
    registered = await registration(stub, invoice.id, REGISTERED)
    assert registered.attempts >= 2
    await stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id))


async def forget_answer(einvoicing: Runtime, invoice_id: str) -> None:
    """As if the IRP's answer had been lost: the registration pending again, due now."""
    async with einvoicing.engine.begin() as conn:
        await conn.execute(
            sa.update(einvoice_registrations)
            .where(einvoice_registrations.c.document_id == invoice_id)
            .values(
                status="pending",
                ack_no="",
                ack_at=None,
                signed_invoice="",
                signed_qr_code="",
                next_attempt_at=datetime.now(UTC),
            )
        )


async def test_duplicate_is_resolved_by_get_irn(stub, invoicing, einvoicing, irp):
    invoice = await issue(stub, invoicing)
    first = await registration(stub, invoice.id, REGISTERED)
    await forget_answer(einvoicing, invoice.id)
    again = await registration(stub, invoice.id, REGISTERED)
    assert (again.irn, again.ack_no) == (first.irn, first.ack_no)
    assert first.irn in await irp.irns()  # registered once: the IRP has it under the one IRN


async def test_duplicate_with_other_details_fails_and_is_listed(stub, invoicing, einvoicing, irp):
    await irp.control.outage(-1)
    try:
        invoice = await issue(stub, invoicing)
        pending = await registration(stub, invoice.id)
        # Someone registered this number with another total (another system, by hand on the portal).
        async with einvoicing.engine.connect() as conn:
            irn = (
                await conn.execute(
                    sa.select(einvoice_registrations.c.irn).where(einvoice_registrations.c.document_id == invoice.id)
                )
            ).scalar_one()
        assert irn == pending.irn
        other = _other_document(invoice, total="9999.00")
        answer = await irp.control.register(SUPPLIER_GSTIN, json.loads(other))
        assert answer["Status"] == 1, answer
    finally:
        await irp.control.outage(0)
    failed = await registration(stub, invoice.id, pb.EINVOICE_REGISTRATION_STATUS_FAILED)
    assert "already holds IRN" in failed.last_error and "credit note" in failed.last_error
    listed = await stub.ListEinvoiceRegistrations(
        pb.ListEinvoiceRegistrationsRequest(status=pb.EINVOICE_REGISTRATION_STATUS_FAILED, page_size=500)
    )
    assert invoice.id in {r.document_id for r in listed.registrations}
    await expect_rpc_error(
        stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=invoice.id)), grpc.StatusCode.FAILED_PRECONDITION
    )


def _other_document(invoice: pb.Invoice, *, total: str) -> str:
    """A valid INV-01 document for ``invoice``'s number with another value (another system registered it)."""
    from decimal import Decimal as D

    from services.invoicing.domain.einvoice import dumps

    day = datetime.strptime(invoice.issue_date, "%Y-%m-%d").strftime("%d/%m/%Y")
    return dumps(
        {
            "Version": "1.1",
            "TranDtls": {"TaxSch": "GST", "SupTyp": "B2B"},
            "DocDtls": {"Typ": "INV", "No": invoice.number, "Dt": day},
            "SellerDtls": {
                "Gstin": SUPPLIER_GSTIN,
                "LglNm": "Someone Else",
                "Addr1": "1 MG Road",
                "Loc": "Bengaluru",
                "Pin": 560001,
                "Stcd": "29",
            },
            "BuyerDtls": {
                "Gstin": BUYER_GSTIN,
                "LglNm": "Rangoli",
                "Pos": "29",
                "Addr1": "42 Residency Road",
                "Loc": "Bengaluru",
                "Pin": 560025,
                "Stcd": "29",
            },
            "ItemList": [
                {
                    "SlNo": "1",
                    "PrdDesc": "Consulting",
                    "IsServc": "Y",
                    "HsnCd": "998315",
                    "Qty": D("1.000"),
                    "Unit": "OTH",
                    "UnitPrice": D("8473.730"),
                    "TotAmt": D("8473.73"),
                    "Discount": D("0.00"),
                    "AssAmt": D("8473.73"),
                    "GstRt": D("18.000"),
                    "IgstAmt": D("0.00"),
                    "CgstAmt": D("762.64"),
                    "SgstAmt": D("762.64"),
                    "TotItemVal": D("9999.01"),
                }
            ],
            "ValDtls": {
                "AssVal": D("8473.73"),
                "CgstVal": D("762.64"),
                "SgstVal": D("762.64"),
                "IgstVal": D("0.00"),
                "RndOffAmt": D("-0.01"),
                "TotInvVal": D(total),
            },
        }
    )


async def test_void_cancels_the_irn_within_24_hours_and_is_refused_after(stub, invoicing, irp):
    first = await issue(stub, invoicing)
    second = await issue(stub, invoicing)
    registered = await registration(stub, first.id, REGISTERED)
    await registration(stub, second.id, REGISTERED)
    voided = await stub.VoidInvoice(
        pb.VoidInvoiceRequest(invoice_id=first.id, reason="Wrong customer", irn_cancel_reason="2")
    )
    assert voided.invoice.status == pb.INVOICE_STATUS_VOID
    cancelled = await registration(stub, first.id, pb.EINVOICE_REGISTRATION_STATUS_CANCELLED)
    assert cancelled.cancel_time.seconds and (await irp.irns())[registered.irn]["status"] == "CNL"
    # A bad reason code changes nothing.
    await expect_rpc_error(
        stub.VoidInvoice(pb.VoidInvoiceRequest(invoice_id=second.id, reason="x", irn_cancel_reason="7")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await irp.control.advance(25 * 3600)  # the IRP's clock: our own still says minutes, the IRP's answer 2270 decides
    try:
        error = await expect_rpc_error(
            stub.VoidInvoice(
                pb.VoidInvoiceRequest(invoice_id=second.id, reason="Order cancelled", irn_cancel_reason="3")
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert "2270" in error.details() and "credit note" in error.details()
        still = await stub.GetInvoice(pb.GetInvoiceRequest(invoice_id=second.id))
        assert still.invoice.status == pb.INVOICE_STATUS_ISSUED
    finally:
        await irp.control.reset_clock()


async def test_thirty_day_rule_blocks_before_sending_and_operators_retry(stub, invoicing, einvoicing, irp):
    # The IRP stays out until the block is seen: the service's own registrar (today's clock) cannot register the
    # invoice meanwhile, while the registrar of 31 days on refuses it before sending.
    await irp.control.outage(-1)
    try:
        invoice = await issue(stub, invoicing)
        await registration(stub, invoice.id)
        failed = await blocked_later(stub, einvoicing, irp, invoice.id)
    finally:
        await irp.control.outage(0)
    assert "blocked before sending" in failed.last_error and "30 days" in failed.last_error
    # Never reached the IRP (the service's own registrar may meanwhile register other tests' invoices).
    assert failed.irn and failed.irn not in await irp.irns()
    # Today it is within the limit: an operator's retry registers it.
    retried = await stub.RetryEinvoiceRegistration(pb.RetryEinvoiceRegistrationRequest(document_id=invoice.id))
    assert retried.registration.status == pb.EINVOICE_REGISTRATION_STATUS_PENDING
    await registration(stub, invoice.id, REGISTERED)


async def blocked_later(stub, einvoicing, irp, invoice_id: str) -> pb.EinvoiceRegistration:
    """Run the registrar of a clock 31 days on until the invoice's registration is failed (a registration the
    service's registrar holds at that moment is claimed on a later round); the failed registration."""
    # The registrar of a clock 31 days on: the invoice is past the limit of a ₹10 crore+ supplier.
    settings = einvoicing.settings
    later = NicIrpConnector(
        irp.url,
        NicCredentials(
            SUPPLIER_GSTIN,
            settings.irp_client_id,
            settings.irp_client_secret,
            settings.irp_username,
            settings.irp_password,
            irp.auth_public_key,
        ),
    )
    policy = einvoice_policy(settings)
    assert policy.turnover_band is TurnoverBand.FROM_10_CRORE
    registrar = EinvoiceRegistrar(
        partial(InvoicingUnitOfWork, einvoicing.engine),
        later,
        policy,
        clock=lambda: datetime.now(UTC) + timedelta(days=31),
    )
    try:
        async with asyncio.timeout(10):
            while True:
                await registrar.register_due()
                found = await registration(stub, invoice_id)
                if found.status == pb.EINVOICE_REGISTRATION_STATUS_FAILED:
                    return found
                await asyncio.sleep(0.05)
    finally:
        await later.aclose()


async def test_credit_note_is_einvoiced_as_crn(stub, invoicing, irp):
    invoice = await issue(stub, invoicing)
    await registration(stub, invoice.id, REGISTERED)
    created = await stub.CreateCreditNote(
        pb.CreateCreditNoteRequest(
            invoice_id=invoice.id,
            lines=[pb.CreditNoteLineRequest(line_number=1, amount_minor=250_000)],
            reason_code=pb.CREDIT_NOTE_REASON_SERVICE_ISSUE,
            reason="Outage: a quarter of the fee back",
            outcome=pb.CREDIT_NOTE_OUTCOME_CREDIT,
            idempotency_key=f"{invoice.id}-cn",
        )
    )
    note = created.credit_note
    registered = await registration(stub, note.id, REGISTERED)
    assert (registered.document_type, registered.document_number, registered.invoice_id) == (
        "CRN",
        note.number,
        invoice.id,
    )
    rendered = await stub.RenderCreditNote(pb.RenderCreditNoteRequest(credit_note_id=note.id))
    claims = signed_qr_claims(rendered.content, irp)
    assert (claims["DocTyp"], claims["DocNo"], claims["TotInvVal"]) == ("CRN", note.number, 2950.0)  # 2,500 + 18 %
