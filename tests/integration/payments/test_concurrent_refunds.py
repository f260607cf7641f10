"""Refund limits under concurrent requests: however many arrive at once, at one replica or two, a payment's refunds
never add up to more than was captured, and one idempotency key makes one refund."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import grpc
import pytest

from billing.payments.v1 import payments_pb2 as pay
from billing.payments.v1 import payments_pb2_grpc
from services.payments.__main__ import DEFINITION as PAYMENTS
from tests.conftest import mesh_channel, running_service
from tests.integration.payments.conftest import (
    Collecting,
    collection,
    eventually,
    paid_invoice,
    payments_settings,
    sandbox_refunds,
)

CAPTURED = 11800


@pytest.fixture(scope="module")
async def replica(collecting, database_url, nats_url) -> AsyncIterator[payments_pb2_grpc.PaymentsServiceStub]:
    """A second payments replica on the same database, talking to the same sandbox."""
    async with running_service(PAYMENTS, database_url, nats_url, **payments_settings(collecting.sandbox)) as second:
        async with mesh_channel(second.address) as channel:
            yield payments_pb2_grpc.PaymentsServiceStub(channel)


async def _at_once(stubs: list, payment: pay.Payment, amount: int, keys: list[str]) -> list:
    """One CreateRefund per key, all sent together, spread over the stubs in turn; replies and errors in order."""
    calls = [stubs[n % len(stubs)].CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=amount, reason=f"service credit {n}", idempotency_key=key))
        for n, key in enumerate(keys)]
    return await asyncio.gather(*calls, return_exceptions=True)


async def _all_processed(collecting: Collecting, invoice_id: str, count: int) -> list[pay.Refund]:
    reply = await eventually(
        lambda: collection(collecting.stub, invoice_id),
        lambda r: len(r.refunds) == count and all(x.status == pay.REFUND_STATUS_PROCESSED for x in r.refunds),
        what=f"{count} processed refunds")
    return list(reply.refunds)


async def _never_more_than_captured(collecting: Collecting, stubs: list, invoice, payment: pay.Payment) -> None:
    replies = await _at_once(stubs, payment, 1000, [secrets.token_hex(8) for _ in range(20)])
    created = [r.refund for r in replies if isinstance(r, pay.CreateRefundResponse)]
    refused = [r for r in replies if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) + len(refused) == 20, [r for r in replies if isinstance(r, Exception)]
    assert len(created) == 11, [r.details() for r in refused][:3]
    assert all(r.created for r in replies if isinstance(r, pay.CreateRefundResponse))
    assert len(refused) == 9
    for error in refused:
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
        assert "800 of 11800" in error.details(), error.details()  # what is left, of what was captured

    ours = await _all_processed(collecting, invoice.id, 11)
    assert sum(r.amount_minor for r in ours) == 11000 <= CAPTURED
    theirs = sandbox_refunds(collecting, payment.provider_payment_id)
    assert len(theirs) == 11 and sum(r["amount"] for r in theirs) == 11000
    assert {r["id"] for r in theirs} == {r.provider_refund_id for r in ours}

    # Ten at once with one idempotency key: one refund, the same one answered to all.
    key = secrets.token_hex(8)
    calls = [stubs[n % len(stubs)].CreateRefund(pay.CreateRefundRequest(
        payment_id=payment.id, amount_minor=500, reason="one refund, asked ten times", idempotency_key=key))
        for n in range(10)]
    replies = await asyncio.gather(*calls)
    assert sum(r.created for r in replies) == 1
    assert len({r.refund.id for r in replies}) == 1
    ours = await _all_processed(collecting, invoice.id, 12)
    theirs = sandbox_refunds(collecting, payment.provider_payment_id)
    assert len(theirs) == 12 and sum(r["amount"] for r in theirs) == sum(r.amount_minor for r in ours) == 11500


async def test_twenty_refunds_at_once_never_refund_more_than_was_captured(collecting, invoicing_stub, invoicing):
    invoice, payment = await paid_invoice(collecting, invoicing_stub, invoicing)
    assert payment.amount_minor == CAPTURED
    await _never_more_than_captured(collecting, [collecting.stub], invoice, payment)


async def test_two_replicas_sharing_the_requests_never_refund_more_than_was_captured(collecting, replica,
                                                                                    invoicing_stub, invoicing):
    invoice, payment = await paid_invoice(collecting, invoicing_stub, invoicing)
    await _never_more_than_captured(collecting, [collecting.stub, replica], invoice, payment)
