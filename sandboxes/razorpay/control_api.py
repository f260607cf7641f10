"""The control API under /_sandbox: what tests (and a developer at `make run`) use to play the customer, the bank
and the network. No auth: it only ever listens where the sandbox does. Errors use Razorpay's error shape.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sandboxes.razorpay import payments
from sandboxes.razorpay.errors import bad_request, not_found
from sandboxes.razorpay.faults import Fault
from sandboxes.razorpay.ids import advance, now
from sandboxes.razorpay.state import Sandbox
from sandboxes.razorpay.store import Obj, public
from sandboxes.razorpay.webhooks import WebhookBehaviour

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])
Method = Literal["upi", "card", "netbanking", "wallet", "emandate"]


class PayRequest(BaseModel):
    method: Method = "upi"
    vpa: str | None = None
    card_number: str | None = None
    bank: str | None = None
    wallet: str | None = None
    capture: Literal["auto", "manual"] | None = None  # None follows the order's payment_capture
    amount: int | None = Field(None, description="for partial payments; default the amount due")
    email: str | None = None
    contact: str | None = None
    outcome: Literal["success", "fail"] = "success"
    # An authorisation order (recurring): what the bank does with the mandate once the payment is authorised.
    mandate: Literal["confirm", "reject", "pending"] | None = None


class FailRequest(BaseModel):
    method: Method = "card"
    error_code: str | None = None
    error_description: str | None = None
    error_source: str | None = None
    error_step: str | None = None
    error_reason: str | None = None


class FaultRequest(BaseModel):
    path_prefix: str = "/v1/"
    method: str | None = None
    status: Literal[500, 502, 503] | None = 500
    hang_seconds: float = Field(0.0, ge=0, le=600)
    times: int = Field(1, ge=1)


class TamperRequest(BaseModel):
    amount: int | None = None
    currency: str | None = None
    status: str | None = None


class OrphanPaymentRequest(BaseModel):
    amount: int = Field(ge=100)
    currency: str = "INR"
    method: Method = "upi"
    status: Literal["authorized", "captured"] = "captured"
    notes: dict[str, str] = Field(default_factory=dict)
    with_order: bool = Field(True, description="give it a sandbox-side order (that our platform never created)")
    notify: bool = Field(False, description="send its payment.* webhooks")


class WebhookConfig(BaseModel):
    url: str | None = None
    secret: str | None = None


class RefundSettlement(BaseModel):
    mode: Literal["auto", "manual"]


class Count(BaseModel):
    count: int = Field(1, ge=0)


class Outcome(BaseModel):
    outcome: Literal["processed", "failed"] | None = None


def sandbox_of(request: Request) -> Sandbox:
    return request.app.state.sandbox


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    sandbox = sandbox_of(request)
    store = sandbox.store
    return {
        "status": "ok",
        "url": sandbox.base_url,
        "key_id": sandbox.settings.key_id,
        "counts": {"orders": len(store.orders), "payments": len(store.payments), "refunds": len(store.refunds),
                   "payment_links": len(store.payment_links), "customers": len(store.customers),
                   "tokens": len(store.tokens), "events": len(sandbox.webhooks.events)},
    }


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    sandbox_of(request).reset()
    return {"status": "reset"}


@router.post("/orders/{order_id}/pay")
async def pay_order(order_id: str, body: PayRequest, request: Request) -> Obj:
    return public(sandbox_of(request).ledger.pay(order_id, body.model_dump(exclude_none=True)))


@router.post("/orders/{order_id}/fail")
async def fail_order(order_id: str, body: FailRequest, request: Request) -> Obj:
    return public(sandbox_of(request).ledger.fail(order_id, body.model_dump(exclude_none=True)))


@router.post("/payment_links/{link_id}/pay")
async def pay_link(link_id: str, body: PayRequest, request: Request) -> Obj:
    return public(sandbox_of(request).links.pay(link_id, body.model_dump(exclude_none=True)))


@router.post("/refunds/fail-next")
async def fail_next_refunds(body: Count, request: Request) -> dict[str, int]:
    ledger = sandbox_of(request).ledger
    ledger.fail_next_refunds = body.count
    return {"fail_next_refunds": ledger.fail_next_refunds}


@router.put("/refunds/settlement")
async def refund_settlement(body: RefundSettlement, request: Request) -> dict[str, str]:
    sandbox_of(request).ledger.refund_settlement = body.mode
    return {"mode": body.mode}


@router.post("/refunds/{refund_id}/fail")
async def arm_refund_failure(refund_id: str, request: Request) -> Obj:
    sandbox = sandbox_of(request)
    refund = sandbox.store.get("refunds", refund_id)
    if refund["status"] != "pending":
        raise bad_request(f"Refund is already {refund['status']}")
    sandbox.ledger.fail_refund_ids.add(refund_id)
    return public(refund)


@router.post("/refunds/{refund_id}/settle")
async def settle_refund(refund_id: str, body: Outcome, request: Request) -> Obj:
    sandbox = sandbox_of(request)
    refund = sandbox.store.get("refunds", refund_id)
    if refund["status"] != "pending":
        raise bad_request(f"Refund is already {refund['status']}")
    settled = sandbox.ledger.settle_refund(refund_id, body.outcome)
    assert settled is not None
    return public(settled)


@router.get("/faults")
async def list_faults(request: Request) -> list[dict[str, Any]]:
    return sandbox_of(request).faults.describe()


@router.post("/faults")
async def inject_fault(body: FaultRequest, request: Request) -> list[dict[str, Any]]:
    faults = sandbox_of(request).faults
    faults.arm(Fault(**body.model_dump()))
    return faults.describe()


@router.delete("/faults")
async def clear_faults(request: Request) -> list[dict[str, Any]]:
    faults = sandbox_of(request).faults
    faults.clear()
    return faults.describe()


@router.patch("/payments/{payment_id}")
async def tamper_payment(payment_id: str, body: TamperRequest, request: Request) -> Obj:
    """Change a stored payment behind our platform's back (reconciliation tests); sends no webhook."""
    sandbox = sandbox_of(request)
    payment = sandbox.store.get("payments", payment_id)
    payment.update(body.model_dump(exclude_none=True))
    if body.status is not None:
        # Razorpay's `captured` flag is true exactly for captured (and later refunded) payments; left as it was, a
        # "failed" payment would still say captured and clients that read the flag would not see the change.
        payment["captured"] = body.status in ("captured", "refunded")
    sandbox.store.save()
    return public(payment)


@router.post("/payments")
async def create_orphan_payment(body: OrphanPaymentRequest, request: Request) -> Obj:
    """A payment none of our orders asked for, as if taken on another integration of the same account."""
    sandbox = sandbox_of(request)
    if body.with_order:
        order = sandbox.ledger.create_order({"amount": body.amount, "currency": body.currency, "notes": body.notes})
    else:
        order = {"id": None, "currency": body.currency, "notes": body.notes}
    payment = payments.new_payment(order, body.method, {}, body.amount, "stranger@example.com", "+919000000000")
    payment["status"] = "authorized"
    sandbox.store.payments[payment["id"]] = payment
    if body.status == "captured":
        payment["status"], payment["captured"] = "captured", True
        payment["fee"], payment["tax"] = payments.fee_and_tax(body.amount)
        if body.with_order:
            order.update(status="paid", attempts=1, amount_paid=body.amount, amount_due=0)
    sandbox.store.save()
    if body.notify:
        sandbox.webhooks.publish(f"payment.{body.status}", {"payment": payments.webhook_view(payment)})
    return public(payment)


@router.delete("/{kind}/{object_id}")
async def delete_object(kind: Literal["orders", "payments", "refunds", "payment_links"], object_id: str,
                        request: Request) -> dict[str, Any]:
    sandbox = sandbox_of(request)
    objects = getattr(sandbox.store, kind)
    if objects.pop(object_id, None) is None:
        raise not_found()
    sandbox.store.save()
    return {"deleted": object_id}


@router.get("/webhooks")
async def webhook_config(request: Request) -> dict[str, Any]:
    webhooks = sandbox_of(request).webhooks
    return {"url": webhooks.url, "behaviour": vars(webhooks.behaviour), "held": webhooks.pending()}


@router.put("/webhooks")
async def set_webhook(body: WebhookConfig, request: Request) -> dict[str, Any]:
    webhooks = sandbox_of(request).webhooks
    webhooks.url = body.url
    if body.secret:
        webhooks.secret = body.secret
    return {"url": webhooks.url}


@router.put("/webhooks/behaviour")
async def set_webhook_behaviour(body: dict[str, Any], request: Request) -> dict[str, Any]:
    webhooks = sandbox_of(request).webhooks
    try:
        webhooks.behaviour = WebhookBehaviour(**body)
    except TypeError as exc:
        raise bad_request(str(exc)) from None
    return vars(webhooks.behaviour)


@router.post("/webhooks/flush")
async def flush_webhooks(request: Request) -> dict[str, int]:
    return {"released": sandbox_of(request).webhooks.flush()}


@router.get("/webhooks/deliveries")
async def deliveries(request: Request) -> list[dict[str, Any]]:
    return sandbox_of(request).webhooks.log_lines()


@router.post("/webhooks/idle")
async def wait_for_deliveries(request: Request, timeout: float = 10.0) -> list[dict[str, Any]]:
    webhooks = sandbox_of(request).webhooks
    await webhooks.idle(timeout)
    return webhooks.log_lines()


@router.get("/webhooks/events")
async def events(request: Request) -> list[dict[str, Any]]:
    return [{"event_id": e.event_id, "event": e.event, "body": json.loads(e.body)}
            for e in sandbox_of(request).webhooks.events.values()]


@router.post("/webhooks/events/{event_id}/redeliver")
async def redeliver(event_id: str, request: Request) -> dict[str, Any]:
    webhooks = sandbox_of(request).webhooks
    if event_id not in webhooks.events:
        raise not_found()
    return vars(webhooks.redeliver(event_id))




# ---- recurring payments: the clock, the bank's answers, the customer's bank app
class Advance(BaseModel):
    seconds: int = Field(ge=0, le=366 * 86400)


class TokenMove(BaseModel):
    state: Literal["confirmed", "rejected", "paused", "cancelled"]
    reason: str | None = None


@router.get("/clock")
async def clock(request: Request) -> dict[str, int]:
    return {"now": now()}


@router.post("/clock/advance")
async def advance_clock(body: Advance, request: Request) -> dict[str, int]:
    """Move the sandbox clock forward and make every debit whose notice period has now passed."""
    advance(body.seconds)
    debited = sandbox_of(request).recurring.run_due()
    return {"now": now(), "debited": debited}


@router.post("/recurring/fail-next-debits")
async def fail_next_debits(body: Count, request: Request) -> dict[str, int]:
    recurring = sandbox_of(request).recurring
    recurring.fail_next_debits = body.count
    return {"fail_next_debits": recurring.fail_next_debits}


@router.post("/recurring/fail-next-notifications")
async def fail_next_notifications(body: Count, request: Request) -> dict[str, int]:
    recurring = sandbox_of(request).recurring
    recurring.fail_next_notifications = body.count
    return {"fail_next_notifications": recurring.fail_next_notifications}


@router.post("/tokens/{token_id}/state")
async def move_token(token_id: str, body: TokenMove, request: Request) -> Obj:
    """The bank or the customer moves a mandate (confirms or rejects an eNACH registration, pauses or revokes it
    in their UPI app); the token's webhook is sent."""
    return public(sandbox_of(request).recurring.move(token_id, body.state, body.reason))
