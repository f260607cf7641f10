"""The delivery metrics operators watch: emails by SMTP outcome, webhook POSTs by answer, and their latency,
counted by the real adapters against a real mailbox and a real HTTP receiver."""

from __future__ import annotations

from email.message import EmailMessage

from prometheus_client import REGISTRY

from sandboxes.smtp import running_mailbox
from services.notification.adapters.mailer import SmtpMailer, SmtpServer
from services.notification.adapters.webhook_poster import HttpxPoster
from services.notification.domain.messages import SendOutcome
from tests.integration.notification.receiver import receiver  # noqa: F401 - the fixture


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_emails_are_counted_by_outcome(refused_address):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "b@billing.test", "a@acme.test", "hello"
    message.set_content("hi")
    sent, transient = sample("billing_notification_emails_total", outcome="sent"), \
        sample("billing_notification_emails_total", outcome="transient")
    async with running_mailbox() as box:
        result = await SmtpMailer(SmtpServer(box.smtp_host, box.smtp_port, timeout_seconds=5)).send(message)
    assert result.outcome is SendOutcome.SENT
    host, port = refused_address.rsplit(":", 1)
    down = await SmtpMailer(SmtpServer(host, int(port), timeout_seconds=2)).send(message)
    assert down.outcome is SendOutcome.TRANSIENT
    assert sample("billing_notification_emails_total", outcome="sent") - sent == 1
    assert sample("billing_notification_emails_total", outcome="transient") - transient == 1


async def test_webhook_posts_are_counted_by_answer_and_timed(receiver, refused_address):  # noqa: F811
    receiver.answers["metrics"] = [503]
    before = {result: sample("billing_notification_webhook_deliveries_total", result=result)
              for result in ("2xx", "5xx", "no_answer")}
    timed = sample("billing_notification_webhook_delivery_seconds_count")
    poster = HttpxPoster(timeout_seconds=5)
    try:
        assert (await poster.post(f"{receiver.url}/hooks/metrics", {}, b"{}")).status_code == 503
        assert (await poster.post(f"{receiver.url}/hooks/metrics", {}, b"{}")).status_code == 200
        assert (await poster.post(f"http://{refused_address}/hooks/metrics", {}, b"{}")).status_code == 0
    finally:
        await poster.close()
    after = {result: sample("billing_notification_webhook_deliveries_total", result=result) for result in before}
    assert {result: after[result] - before[result] for result in before} == {"2xx": 1, "5xx": 1, "no_answer": 1}
    assert sample("billing_notification_webhook_delivery_seconds_count") - timed == 3
