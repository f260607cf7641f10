"""The mailbox as `make run` starts it: a process on the preferred ports or free ones, wired into notification,
keeping its messages in the data directory across restarts, and named in the banner."""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage
from pathlib import Path

import httpx

from devstack import banner
from devstack.mailbox import LocalMailbox


def _send(mailbox: LocalMailbox, subject: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "invoices@billing.test", "billing@acme.test", subject
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", mailbox.smtp_port, timeout=10) as client:
        client.send_message(message)


def test_the_mailbox_process_is_wired_into_notification_and_keeps_mail_across_restarts(tmp_path: Path) -> None:
    said: list[str] = []
    with socket.socket() as taken:  # a preferred port already in use: the mailbox moves, and says so
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        mailbox = LocalMailbox(tmp_path, smtp_port=busy, web_port=0, say=said.append).start()
    try:
        assert mailbox.smtp_port != busy and any(f"port {busy} is taken" in line for line in said)
        assert mailbox.notification_env() == {
            "NOTIFICATION_SMTP_HOST": "127.0.0.1", "NOTIFICATION_SMTP_PORT": str(mailbox.smtp_port),
            "NOTIFICATION_SMTP_SECURITY": "none", "NOTIFICATION_MAILBOX_URL": mailbox.url}
        _send(mailbox, "Invoice INV-1")
        assert [m["subject"] for m in httpx.get(f"{mailbox.url}/api/messages").json()] == ["Invoice INV-1"]
    finally:
        mailbox.stop()
    assert not mailbox.running and not (tmp_path / "mailbox.pid").exists()

    again = LocalMailbox(tmp_path, smtp_port=0, web_port=0, say=said.append).start()
    try:
        page = httpx.get(again.url)
        assert page.status_code == 200 and "Invoice INV-1" in page.text
    finally:
        again.stop()


def test_the_banner_names_the_mailbox(tmp_path: Path) -> None:
    endpoints = {"gateway": None, "admin_token": "t", "services": {}, "running": [], "database_url": "postgresql://x",
                 "nats_url": "nats://x", "mailbox": {"smtp": "127.0.0.1:1025", "web": "http://127.0.0.1:8025"}}
    text = banner.render(endpoints, log_dir=tmp_path, data_dir=tmp_path, endpoints_file=tmp_path / "e.json", notes=[])
    assert "  Mailbox           http://127.0.0.1:8025   (every email notification sends; SMTP 127.0.0.1:1025)" in text
