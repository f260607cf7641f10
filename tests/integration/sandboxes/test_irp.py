"""The IRP sandbox through invoicing's NIC connector: authentication and Sek, Generate / Get / Cancel IRN, the
documented error codes, token refresh, an outage, and signatures that verify with the sandbox's public key."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from sandboxes.irp import RunningIrp, running_irp
from services.invoicing.adapters.irp_nic import NicCredentials, NicIrpConnector
from services.invoicing.domain.einvoice import DocumentType, SellerDetails, dumps, invoice_document, irn
from services.invoicing.domain.einvoice_registration import IrpRefusal, IrpUnavailable
from tests.unit.services.invoicing.adapters import invoice_samples as samples

SELLER = SellerDetails(
    legal_name="Billing Platform Demo Pvt Ltd", address1="1 MG Road", location="Bengaluru", pin=560001, state_code="29"
)


def connector(irp: RunningIrp, **kw) -> NicIrpConnector:
    s = irp.settings
    credentials = NicCredentials(
        samples.SUPPLIER_GSTIN, s.client_id, s.client_secret, s.username, s.password, irp.auth_public_key
    )
    return NicIrpConnector(irp.url, credentials, **kw)


def document(number: str = "INV/2627/00001") -> str:
    today = datetime.now(UTC).date()
    invoice = replace(samples.inr_intra_state(), number=number, issue_date=today)
    return dumps(invoice_document(invoice, SELLER))


def claims(token: str, public_key: str) -> dict:
    decoded = jwt.decode(token, public_key, algorithms=["RS256"])
    return json.loads(decoded["data"])


async def test_register_fetch_and_signed_qr_claims() -> None:
    async with running_irp() as irp:
        nic = connector(irp)
        ack = await nic.generate(document())
        today = datetime.now(UTC).date()
        assert ack.irn == irn(samples.SUPPLIER_GSTIN, today, DocumentType.INVOICE, "INV/2627/00001")
        qr = claims(ack.signed_qr_code, irp.signing_public_key)
        assert qr["SellerGstin"] == samples.SUPPLIER_GSTIN and qr["BuyerGstin"] == samples.INTRA_GSTIN
        assert (qr["DocNo"], qr["DocTyp"], qr["ItemCnt"], qr["MainHsnCode"]) == ("INV/2627/00001", "INV", 3, "998315")
        assert qr["TotInvVal"] == 6540.9 and qr["Irn"] == ack.irn
        assert claims(ack.signed_invoice, irp.signing_public_key)["AckNo"] == int(ack.ack_no)
        fetched = await nic.get(ack.irn)
        assert (fetched.irn, fetched.ack_no, fetched.status) == (ack.irn, ack.ack_no, "ACT")
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(ack.signed_qr_code, irp.auth_public_key, algorithms=["RS256"])
        await nic.aclose()


async def test_duplicate_answers_2150_with_the_existing_irn() -> None:
    async with running_irp() as irp:
        nic = connector(irp)
        ack = await nic.generate(document())
        with pytest.raises(IrpRefusal) as refused:
            await nic.generate(document())
        assert "2150" in refused.value.codes and refused.value.existing_irn == ack.irn
        await nic.aclose()


async def test_validation_errors_carry_the_irp_codes() -> None:
    async with running_irp() as irp:
        nic = connector(irp)
        doc = json.loads(document())
        doc["ValDtls"]["TotInvVal"] = 9999.99
        with pytest.raises(IrpRefusal) as refused:
            await nic.generate(json.dumps(doc))
        assert "2189" in refused.value.codes
        await nic.aclose()


async def test_cancel_within_24_hours_and_not_after() -> None:
    async with running_irp() as irp:
        nic = connector(irp)
        first = await nic.generate(document("INV/2627/00001"))
        second = await nic.generate(document("INV/2627/00002"))
        await irp.advance(23 * 3600)
        cancelled_at = await nic.cancel(first.irn, "2", "data entry mistake")
        assert cancelled_at > datetime.now(UTC) + timedelta(hours=22)
        assert (await nic.get(first.irn)).status == "CNL"
        await irp.advance(2 * 3600)
        with pytest.raises(IrpRefusal) as refused:
            await nic.cancel(second.irn, "3", "order cancelled")
        assert refused.value.codes == {"2270"}
        with pytest.raises(IrpRefusal) as again:  # a cancelled number is never registered again
            await nic.generate(document("INV/2627/00001"))
        assert "2150" in again.value.codes
        await irp.advance(2 * 86400)
        with pytest.raises(IrpRefusal) as old:
            await nic.get(second.irn)
        assert old.value.codes == {"2283"}
        with pytest.raises(IrpRefusal) as unknown:
            await nic.get("0" * 64)
        assert unknown.value.codes == {"2148"}
        await nic.aclose()


async def test_token_is_renewed_near_its_expiry() -> None:
    async with running_irp(token_minutes=60) as irp:
        moved = timedelta(0)
        nic = connector(irp, clock=lambda: datetime.now(UTC) + moved, refresh_margin=timedelta(minutes=10))
        await nic.generate(document("INV/2627/00001"))
        assert nic.authentications == 1
        await nic.generate(document("INV/2627/00002"))
        assert nic.authentications == 1
        moved = timedelta(minutes=51)
        await nic.generate(document("INV/2627/00003"))
        assert nic.authentications == 2
        # The IRP forgot the token early (expired on its clock): 1005, renewed once, and the call goes through.
        irp.irp.sessions.clear()
        await nic.generate(document("INV/2627/00004"))
        assert nic.authentications == 3
        await nic.aclose()


async def test_wrong_credentials_and_outage() -> None:
    async with running_irp() as irp:
        bad = NicIrpConnector(
            irp.url,
            NicCredentials(
                samples.SUPPLIER_GSTIN,
                irp.settings.client_id,
                irp.settings.client_secret,
                "someone",
                "wrong",
                irp.auth_public_key,
            ),
        )
        with pytest.raises(IrpRefusal) as refused:
            await bad.generate(document())
        assert refused.value.codes == {"1008"}
        await bad.aclose()
        nic = connector(irp)
        await irp.outage(2)
        with pytest.raises(IrpUnavailable):
            await nic.generate(document())
        with pytest.raises(IrpUnavailable):
            await nic.generate(document())
        assert (await nic.generate(document())).irn
        async with httpx.AsyncClient(base_url=irp.url) as client:
            listed = (await client.get("/_sandbox/irns")).json()
        assert len(listed) == 1
        await nic.aclose()


async def test_the_process_prints_its_url_and_keeps_its_keys(tmp_path) -> None:
    import asyncio
    import os
    import signal
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandboxes.irp",
            "--port",
            "0",
            "--key-dir",
            str(tmp_path / "keys"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert line.startswith("irp sandbox listening on http://127.0.0.1:"), line
        async with httpx.AsyncClient(base_url=line.rsplit(" ", 1)[1]) as client:
            keys = (await client.get("/_sandbox/keys")).json()
        assert keys["signing_public_key"] == (tmp_path / "keys" / "signing.public.pem").read_text()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
