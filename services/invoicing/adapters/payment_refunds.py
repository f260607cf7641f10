"""Invoicing's client of the payments service for refunds (``PaymentRefunds``): a credit note's refund goes through
payments' CreateRefund, the same RPC an operator's refund uses, so the provider, the limits (never more than was
captured) and the refund events that reach settlement are payments' own. Speaks only payments' published
contract (``billing.payments.v1``)."""

from __future__ import annotations

from billing.payments.v1 import payments_pb2, payments_pb2_grpc
from billing_runtime import clients


class PaymentsRefunds:
    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        self._channel = clients.channel(address)
        self._stub = payments_pb2_grpc.PaymentsServiceStub(self._channel)
        self._timeout = timeout

    async def refund(self, payment_id: str, amount_minor: int, reason: str, idempotency_key: str) -> str:
        """The refund's id; raises payments' domain error (FailedPrecondition when too little is left)."""
        response = await clients.call(
            self._stub.CreateRefund,
            payments_pb2.CreateRefundRequest(
                payment_id=payment_id, amount_minor=amount_minor, reason=reason, idempotency_key=idempotency_key
            ),
            timeout=self._timeout,
        )
        return response.refund.id

    async def close(self) -> None:
        await self._channel.close()
