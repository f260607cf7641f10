"""Decoding payments' events into settlements: what is applied, what is ignored, what can never be applied."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.payments.v1 import events_pb2 as payments
from billing_runtime.timestamps import to_timestamp
from services.invoicing.adapters.settlement_messages import (
    PAYMENT_CAPTURED,
    PAYMENT_FAILED,
    REFUND_FAILED,
    SETTLEMENT_SUBJECTS,
    UnprocessableEvent,
    decode_payments_event,
)
from services.invoicing.domain.settlement import SettlementKind

AT = datetime(2026, 10, 3, 9, tzinfo=UTC)


def capture(**overrides) -> bytes:
    fields = dict(
        event_id="evt_1", payment_id="pmt_1", invoice_id="inv_1", organisation_id="org_1",
        provider=payments.PROVIDER_OFFLINE, currency="INR", amount_minor=5000, capture_time=to_timestamp(AT),
    )
    return payments.PaymentCaptured(**{**fields, **overrides}).SerializeToString()


def test_a_capture_becomes_a_payment_settlement():
    event = decode_payments_event(PAYMENT_CAPTURED, capture())
    assert (event.invoice_id, event.organisation_id) == ("inv_1", "org_1")
    s = event.settlement
    assert (s.event_id, s.kind, s.amount_minor, s.currency, s.provider, s.occurred_at) == (
        "evt_1", SettlementKind.PAYMENT_CAPTURED, 5000, "INR", "offline", AT)


def test_a_refund_failure_names_its_refund():
    data = payments.RefundFailed(
        event_id="evt_2", refund_id="rfd_1", payment_id="pmt_1", invoice_id="inv_1", currency="INR",
        amount_minor=100, failure_time=to_timestamp(AT),
    ).SerializeToString()
    s = decode_payments_event(REFUND_FAILED, data).settlement
    assert (s.kind, s.refund_id, s.payment_id) == (SettlementKind.REFUND_FAILED, "rfd_1", "pmt_1")


def test_subjects_settlement_does_not_act_on_are_ignored():
    assert PAYMENT_FAILED not in SETTLEMENT_SUBJECTS
    assert decode_payments_event(PAYMENT_FAILED, b"anything") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\x00", "not a PaymentCaptured"),
        (capture(event_id=""), "event_id is empty"),
        (capture(invoice_id=""), "invoice_id is empty"),
        (capture(amount_minor=-1), "never negative"),
        (capture(currency="rupees"), "not an ISO 4217 code"),
        (capture(provider=payments.PROVIDER_UNSPECIFIED), "provider 0"),
        (payments.PaymentCaptured(event_id="evt_3", invoice_id="inv_1").SerializeToString(), "capture_time"),
    ],
)
def test_what_can_never_be_applied_is_unprocessable(data, reason):
    with pytest.raises(UnprocessableEvent, match=reason):
        decode_payments_event(PAYMENT_CAPTURED, data)
