"""How the payment event consumer settles each message with JetStream, with the use case faked."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import asyncpg
from sqlalchemy.exc import DBAPIError

from billing.payments.v1 import events_pb2 as payments
from billing_runtime.timestamps import to_timestamp
from services.invoicing.adapters.settlement_messages import PAYMENT_CAPTURED, PAYMENT_FAILED, SETTLEMENT_SUBJECTS
from services.invoicing.entrypoints.payment_events import (
    ConsumerSettings,
    PaymentEventConsumer,
    consumer_config,
    is_transient,
)
from services.invoicing.service.settlements import InvoiceNotIssuedYet, Outcome

SETTINGS = ConsumerSettings(durable="invoicing-settlement", ack_wait_seconds=30, max_failures=3, fetch_batch=8)
CAPTURE = payments.PaymentCaptured(
    event_id="evt_1", payment_id="pmt_1", invoice_id="inv_1", organisation_id="org_1",
    provider=payments.PROVIDER_RAZORPAY, currency="INR", amount_minor=100,
    capture_time=to_timestamp(datetime(2026, 10, 1, tzinfo=UTC)),
).SerializeToString()


class FakeMsg:
    def __init__(self, subject: str, data: bytes, delivered: int = 1) -> None:
        self.subject, self.data, self.headers = subject, data, {"Nats-Msg-Id": "msg-1"}
        self.metadata = SimpleNamespace(
            num_delivered=delivered, stream="BILLING_PAYMENTS", sequence=SimpleNamespace(stream=42)
        )
        self.settled: list[tuple[str, float | None]] = []

    async def ack(self) -> None:
        self.settled.append(("ack", None))

    async def nak(self, delay: float | None = None) -> None:
        self.settled.append(("nak", delay))

    async def term(self) -> None:
        self.settled.append(("term", None))


class FakeSettlements:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.applied: list = []
        self.unprocessable: list[tuple[str, str, str]] = []

    async def apply(self, event):
        if self.error is not None:
            raise self.error
        self.applied.append(event)
        return Outcome.APPLIED

    async def record_unprocessable(self, event_id: str, organisation_id: str, detail: str) -> None:
        self.unprocessable.append((event_id, organisation_id, detail))


async def handled(msg: FakeMsg, settlements: FakeSettlements) -> list[tuple[str, float | None]]:
    await PaymentEventConsumer(None, settlements, SETTINGS).handle(msg)  # type: ignore[arg-type]
    return msg.settled


async def test_an_applied_event_is_acked_after_the_use_case_returns():
    settlements = FakeSettlements()
    assert await handled(FakeMsg(PAYMENT_CAPTURED, CAPTURE), settlements) == [("ack", None)]
    assert [e.settlement.event_id for e in settlements.applied] == ["evt_1"]


async def test_an_ignored_subject_is_acked_without_applying():
    settlements = FakeSettlements()
    assert await handled(FakeMsg(PAYMENT_FAILED, b""), settlements) == [("ack", None)]
    assert settlements.applied == []


async def test_an_unreadable_message_is_reviewed_then_terminated():
    settlements = FakeSettlements()
    assert await handled(FakeMsg(PAYMENT_CAPTURED, b"\xff\x00"), settlements) == [("term", None)]
    ((event_id, _, detail),) = settlements.unprocessable
    assert event_id == "msg-1" and "not a PaymentCaptured" in detail


async def test_a_draft_invoice_is_retried_shortly():
    assert await handled(FakeMsg(PAYMENT_CAPTURED, CAPTURE), FakeSettlements(InvoiceNotIssuedYet("draft"))) == [
        ("nak", 2.0)]


async def test_an_outage_is_retried_however_often_it_was_delivered():
    outage = DBAPIError("SELECT", {}, asyncpg.CannotConnectNowError("starting up"))
    settlements = FakeSettlements(outage)
    ((what, _),) = await handled(FakeMsg(PAYMENT_CAPTURED, CAPTURE, delivered=50), settlements)
    assert what == "nak" and settlements.unprocessable == []


async def test_a_bug_is_retried_then_reviewed_on_the_last_allowed_delivery():
    ((what, _),) = await handled(FakeMsg(PAYMENT_CAPTURED, CAPTURE, delivered=2), FakeSettlements(KeyError("x")))
    assert what == "nak"
    settlements = FakeSettlements(KeyError("x"))
    assert await handled(FakeMsg(PAYMENT_CAPTURED, CAPTURE, delivered=3), settlements) == [("term", None)]
    ((event_id, organisation_id, detail),) = settlements.unprocessable
    assert (event_id, organisation_id) == ("evt_1", "org_1") and "failed on all 3 deliveries" in detail


def test_the_consumer_filters_to_settlement_subjects_and_never_gives_up_by_itself():
    config = consumer_config(SETTINGS)
    assert config.filter_subjects == list(SETTLEMENT_SUBJECTS) and config.max_deliver == -1
    assert config.durable_name == "invoicing-settlement"
    assert is_transient(OSError("connection refused")) and not is_transient(KeyError("x"))
