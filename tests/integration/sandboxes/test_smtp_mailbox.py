"""The local mailbox as notification meets it: real SMTP through aiosmtplib (the client notification sends with),
messages read back through the JSON API and the pages, AUTH, armed faults, STARTTLS, and a store that survives a
restart of `python -m sandboxes.smtp`."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from sandboxes.smtp import MailboxControl, MailboxControlError, RunningMailbox, running_mailbox

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n" + bytes(range(256))


def invoice_mail(to: str = "billing@acme.test", cc: str | None = "cfo@acme.test") -> EmailMessage:
    """What notification sends: multipart/alternative (text + HTML) with the invoice PDF attached."""
    message = EmailMessage()
    message["From"] = "Billing Platform <invoices@billing.test>"
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = "Invoice INV-2025-0001 for ₹1,180.00"
    message["Message-ID"] = make_msgid(domain="billing.test")
    message.set_content("Your invoice INV-2025-0001 is attached.\n")
    message.add_alternative(
        "<html><body><h1>Invoice INV-2025-0001</h1><script>parent.document.title='owned'</script></body></html>",
        subtype="html",
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="INV-2025-0001.pdf")
    return message


async def send(box: RunningMailbox, message: EmailMessage, **options: object) -> tuple[dict, str]:
    return await aiosmtplib.send(message, hostname=box.smtp_host, port=box.smtp_port, timeout=5, **options)


@pytest.fixture
async def box() -> AsyncIterator[RunningMailbox]:
    async with running_mailbox() as running:
        yield running


async def test_a_message_reads_back_through_the_api_and_the_pages(box: RunningMailbox) -> None:
    sent = invoice_mail()
    await send(box, sent)
    [kept] = await box.wait_for(1)
    assert kept.rcpt_tos == ["billing@acme.test", "cfo@acme.test"] and kept.mail_from == "invoices@billing.test"

    [summary] = await box.control.messages()
    assert summary["subject"] == "Invoice INV-2025-0001 for ₹1,180.00"
    assert (summary["to"], summary["cc"]) == (["billing@acme.test"], ["cfo@acme.test"])
    assert summary["message_id"] == sent["Message-ID"] and summary["has_html"] and summary["has_text"]
    assert summary["attachments"] == [{"index": 0, "filename": "INV-2025-0001.pdf", "content_type": "application/pdf",
                                       "size": len(PDF), "disposition": "attachment", "content_id": None}]
    assert [part["content_type"] for part in summary["parts"]] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    detail = await box.control.message(summary["id"])
    assert ["Subject", "Invoice INV-2025-0001 for ₹1,180.00"] in detail["headers"]
    assert detail["text"] == "Your invoice INV-2025-0001 is attached.\n" and "<h1>Invoice" in detail["html"]
    assert await box.control.attachment(summary["id"], 0) == PDF
    assert await box.control.raw(summary["id"]) == kept.raw

    async with httpx.AsyncClient(base_url=box.http_url) as web:
        listing = await web.get("/")
        assert listing.status_code == 200 and "Invoice INV-2025-0001 for ₹1,180.00" in listing.text
        page = await web.get(f"/messages/{summary['id']}")
        assert "Your invoice INV-2025-0001 is attached." in page.text and "INV-2025-0001.pdf" in page.text
        assert f'src="/messages/{summary["id"]}/html"' in page.text
        assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page.text  # no allow-scripts, no same-origin
        assert "script-src" not in page.headers["content-security-policy"]  # our pages run no script either
        download = await web.get(f"/messages/{summary['id']}/attachments/0")
        assert download.content == PDF and download.headers["content-type"] == "application/pdf"
        assert 'attachment; filename="INV-2025-0001.pdf"' in download.headers["content-disposition"]
        assert (await web.get(f"/messages/{summary['id']}/attachments/1")).status_code == 404
        assert (await web.get("/messages/nope")).status_code == 404


async def test_the_mail_html_is_served_sandboxed_so_it_cannot_run_scripts(box: RunningMailbox) -> None:
    await send(box, invoice_mail())
    [kept] = await box.wait_for(1)
    async with httpx.AsyncClient(base_url=box.http_url) as web:
        html = await web.get(f"/messages/{kept.id}/html")
    policy = html.headers["content-security-policy"]
    assert policy.startswith("sandbox ") and "allow-scripts" not in policy and "allow-same-origin" not in policy
    assert "default-src 'none'" in policy and html.headers["x-content-type-options"] == "nosniff"
    assert "<h1>Invoice INV-2025-0001</h1>" in html.text


async def test_auth_is_required_and_wrong_passwords_are_refused() -> None:
    async with running_mailbox(username="mailer", password="s3cret") as box:
        with pytest.raises(aiosmtplib.SMTPSenderRefused) as refused:
            await send(box, invoice_mail())
        assert refused.value.code == 530
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as wrong:
            await send(box, invoice_mail(), username="mailer", password="guess")
        assert wrong.value.code == 535
        await send(box, invoice_mail(), username="mailer", password="s3cret")
        [kept] = await box.wait_for(1)
        assert kept.authenticated_as == "mailer" and len(box.messages()) == 1


async def test_without_credentials_configured_any_login_passes(box: RunningMailbox) -> None:
    await send(box, invoice_mail(), username="whoever", password="whatever")
    [kept] = await box.wait_for(1)
    assert kept.authenticated_as == "whoever"


async def test_421_twice_then_the_third_attempt_is_accepted(box: RunningMailbox) -> None:
    await box.control.inject("421 4.3.0 try again later", times=2, stage="RCPT")
    for _ in range(2):
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await send(box, invoice_mail(cc=None))
        assert [(error.code, error.message) for error in refused.value.recipients] == [(421, "4.3.0 try again later")]
    assert await box.control.faults() == []
    await send(box, invoice_mail(cc=None))
    assert len(await box.wait_for(1)) == 1


async def test_a_fault_counts_transactions_not_recipients(box: RunningMailbox) -> None:
    await box.control.inject("451 4.3.0 temporary", times=1, stage="RCPT")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(box, invoice_mail())  # two recipients, both refused by the one transaction
    assert [error.code for error in refused.value.recipients] == [451, 451]
    await send(box, invoice_mail())
    [kept] = await box.wait_for(1)
    assert kept.rcpt_tos == ["billing@acme.test", "cfo@acme.test"]


async def test_451_at_data_and_550_for_one_recipient(box: RunningMailbox) -> None:
    await box.control.inject("451 4.3.0 temporary", stage="DATA")
    with pytest.raises(aiosmtplib.SMTPDataError) as data_error:
        await send(box, invoice_mail())
    assert data_error.value.code == 451 and box.messages() == []

    await box.control.inject("550 5.1.1 mailbox unavailable", stage="RCPT", recipient="CFO@acme.test", times=5)
    errors, _ = await send(box, invoice_mail())  # the other recipient still gets it
    assert {address: response.code for address, response in errors.items()} == {"cfo@acme.test": 550}
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
        await send(box, invoice_mail(to="cfo@acme.test", cc=None))
    assert refused.value.recipients[0].code == 550 and refused.value.recipients[0].message.startswith("5.1.1")
    assert [m.rcpt_tos for m in await box.wait_for(1)] == [["billing@acme.test"]]
    assert (await box.control.faults())[0]["times"] == 3
    await box.control.clear_faults()
    await send(box, invoice_mail(to="cfo@acme.test", cc=None))
    assert len(await box.wait_for(2)) == 2


async def test_a_dropped_connection_and_a_hang(box: RunningMailbox) -> None:
    await box.control.inject(stage="MAIL", disconnect=True)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await send(box, invoice_mail())
    await box.control.inject(stage="DATA", hang_seconds=1.0)
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        await aiosmtplib.send(invoice_mail(), hostname=box.smtp_host, port=box.smtp_port, timeout=0.3)
    await send(box, invoice_mail())
    assert len(await box.wait_for(1)) == 1


async def test_bad_faults_are_refused_and_clear_forgets_messages(box: RunningMailbox) -> None:
    with pytest.raises(MailboxControlError) as bad:
        await box.control.inject("250 OK")
    assert bad.value.status == 422
    with pytest.raises(MailboxControlError):
        await box.control.inject("550 no", stage="MAIL", recipient="a@b.test")
    await send(box, invoice_mail())
    await box.wait_for(1)
    assert await box.control.clear() == 1 and await box.control.messages() == []


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl CLI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_starttls_when_a_certificate_is_configured(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    async with running_mailbox(tls_cert_file=cert, tls_key_file=key, username="mailer", password="pw") as box:
        trust = ssl.create_default_context(cafile=str(cert))
        await send(box, invoice_mail(), start_tls=True, tls_context=trust, username="mailer", password="pw")
        [kept] = await box.wait_for(1)
        assert kept.authenticated_as == "mailer"


@asynccontextmanager
async def mailbox_process(store: Path) -> AsyncIterator[tuple[str, int, str]]:
    env = {**os.environ, "SMTP_SANDBOX_USERNAME": "mailer", "PYTHONPATH": os.pathsep.join(sys.path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandboxes.smtp", "--host", "127.0.0.1", "--smtp-port", "0", "--http-port", "0",
        "--store-dir", str(store), "--password", "pw", env=env, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
        assert line.startswith("smtp mailbox listening on smtp://127.0.0.1:"), line
        smtp, web = line.removeprefix("smtp mailbox listening on smtp://").split(", web ")
        host, port = smtp.rsplit(":", 1)
        yield host, int(port), web
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def test_the_store_survives_a_restart_of_the_process(tmp_path: Path) -> None:
    store = tmp_path / "mailbox"
    async with mailbox_process(store) as (host, port, web):
        await aiosmtplib.send(invoice_mail(), hostname=host, port=port, username="mailer", password="pw", timeout=5)
        control = MailboxControl(web)
        [before] = await control.wait_for(1)
        await control.aclose()
    assert (store / "index.json").exists() and (store / "messages" / f"{before['id']}.eml").exists()
    async with mailbox_process(store) as (host, port, web):
        control = MailboxControl(web)
        try:
            [after] = await control.messages()
            assert after == before
            assert await control.attachment(after["id"], 0) == PDF
        finally:
            await control.aclose()


async def test_the_oldest_messages_are_dropped_beyond_max_messages_and_oversized_ones_refused(tmp_path: Path) -> None:
    async with running_mailbox(store_dir=tmp_path, max_messages=2, max_message_bytes=4096) as box:
        for number in range(3):
            message = invoice_mail(cc=None)
            del message["Subject"]
            message["Subject"] = f"mail {number}"
            message.get_payload()[1].set_content(b"x", maintype="application", subtype="octet-stream")
            await send(box, message)
        assert [m.subject for m in await box.wait_for(2)] == ["mail 1", "mail 2"]
        assert len(list((tmp_path / "messages").glob("*.eml"))) == 2
        with pytest.raises(aiosmtplib.SMTPResponseException) as too_big:
            big = invoice_mail()
            big.add_attachment(bytes(8192), maintype="application", subtype="octet-stream", filename="zeros.bin")
            await send(box, big)
        assert too_big.value.code == 552
