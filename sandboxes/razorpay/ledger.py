"""What happens to orders, payments and refunds, in Razorpay's order, with the webhooks each step sends.

- An order is `created`; every payment attempt makes it `attempted`; a capture that covers it makes it `paid`.
- A payment is `authorized` (payment.authorized), then `captured` (payment.captured, and order.paid once the
  order is covered) automatically, unless the order or the pay call asked for manual capture: then it waits for
  POST /v1/payments/{id}/capture. A declined attempt is `failed` (payment.failed).
- A refund is `pending` (refund.created) and then `processed` (refund.processed) or, when armed, `failed`
  (refund.failed), which gives its amount back to what can be refunded.
Every change is saved (when a state file is configured) before its webhooks are published.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sandboxes.razorpay import payments, validation
from sandboxes.razorpay.errors import bad_request
from sandboxes.razorpay.ids import new_id, now
from sandboxes.razorpay.store import Obj, Store, public
from sandboxes.razorpay.webhooks import WebhookDispatcher


@dataclass
class Ledger:
    store: Store
    webhooks: WebhookDispatcher
    refund_settle_seconds: float = 0.0
    # "auto" settles each refund after refund_settle_seconds; "manual" leaves them pending for the control API.
    refund_settlement: str = "auto"
    fail_next_refunds: int = 0
    fail_refund_ids: set[str] = field(default_factory=set)
    # Called with (order, payment, mandate) when an authorisation order's payment is authorised: the recurring
    # part of the sandbox makes the token (see recurring.py).
    on_authorised: Any = None
    _timers: set[asyncio.TimerHandle] = field(default_factory=set)

    # ---- orders
    def create_order(self, body: dict[str, Any]) -> Obj:
        fields = validation.order_request(body)
        order: Obj = {
            "id": new_id("order"),
            "entity": "order",
            "amount": fields["amount"],
            "amount_paid": 0,
            "amount_due": fields["amount"],
            "currency": fields["currency"],
            "receipt": fields["receipt"],
            "offer_id": None,
            "status": "created",
            "attempts": 0,
            "notes": fields["notes"],
            "created_at": now(),
            "_payment_capture": fields["payment_capture"],
            "_partial_payment": fields["partial_payment"],
            "_first_payment_min_amount": fields["first_payment_min_amount"],
        }
        if fields.get("token") is not None:
            order.update(_token=fields["token"], _method=fields["method"], _customer_id=fields["customer_id"])
        self.store.orders[order["id"]] = order
        self.store.save()
        return order

    # ---- payments
    def pay(self, order_id: str, request: dict[str, Any]) -> Obj:
        """A customer's payment attempt on an order (from the checkout page or the control API)."""
        order = self.store.get("orders", order_id)
        if order["status"] == "paid":
            raise bad_request("Order has already been paid", "order_id")
        amount = request.get("amount") or order["amount_due"]
        if amount != order["amount_due"] and not order["_partial_payment"]:
            raise bad_request("Payment amount should be equal to the order amount", "amount")
        # An eNACH authorisation may be for nothing: the mandate is what is registered.
        zero_mandate = order.get("_method") == "emandate" and order["amount"] == 0
        if not zero_mandate and (not isinstance(amount, int) or amount < 100 or amount > order["amount_due"]):
            raise bad_request(f"The amount must be atleast {order['currency']} 1.00 and at most the amount due",
                              "amount")
        # Checkout with recurring "1" pays an authorisation order by the method the order names.
        method = order.get("_method") or request.get("method") or "upi"
        payment = payments.new_payment(
            order, method, request, amount, request.get("email") or "customer@example.com",
            request.get("contact") or "+919000090000",
        )
        if request.get("_link_id"):
            payment["_link_id"] = request["_link_id"]
        order["attempts"] += 1
        if order["status"] == "created":
            order["status"] = "attempted"
        self.store.payments[payment["id"]] = payment
        if request.get("outcome") == "fail" or payments.should_decline(method, payment):
            return self._fail(payment, request)
        payment["status"] = "authorized"
        self.store.save()
        if order.get("_token") is not None and self.on_authorised is not None:
            self.on_authorised(order, payment, request.get("mandate") or "confirm")
        self.webhooks.publish("payment.authorized", {"payment": payments.webhook_view(payment)})
        capture = request.get("capture") or ("auto" if order["_payment_capture"] else "manual")
        if capture == "auto":
            self._capture(payment)
        elif capture != "manual":
            raise bad_request("capture must be auto or manual", "capture")
        return payment

    def _fail(self, payment: Obj, request: dict[str, Any]) -> Obj:
        payment["status"] = "failed"
        for key, default in payments.DEFAULT_FAILURE.items():
            payment[key] = request.get(key) or default
        self.store.save()
        self.webhooks.publish("payment.failed", {"payment": payments.webhook_view(payment)})
        return payment

    def fail(self, order_id: str, request: dict[str, Any]) -> Obj:
        """A declined payment attempt on the order."""
        return self.pay(order_id, {**request, "outcome": "fail"})

    def capture(self, payment_id: str, body: dict[str, Any]) -> Obj:
        validation.reject_unknown(body, validation.CAPTURE_FIELDS)
        payment = self.store.get("payments", payment_id)
        if payment["status"] == "captured" or payment["captured"]:
            raise bad_request("This payment has already been captured")
        if payment["status"] != "authorized":
            raise bad_request("Only payments which have been authorized and not yet captured can be captured")
        value = body.get("amount")
        if value is None:
            raise bad_request("The amount field is required.", "amount")
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request("The amount must be an integer.", "amount")
        if value != payment["amount"]:
            raise bad_request("Capture amount must be equal to the amount authorized", "amount")
        if body.get("currency") not in (None, payment["currency"]):
            raise bad_request("Currency should be same as the payment currency", "currency")
        self._capture(payment)
        return payment

    def _capture(self, payment: Obj) -> None:
        payment["status"] = "captured"
        payment["captured"] = True
        payment["fee"], payment["tax"] = payments.fee_and_tax(payment["amount"])
        order = self.store.orders.get(payment["order_id"] or "")
        if order is not None:
            order["amount_paid"] += payment["amount"]
            order["amount_due"] = max(order["amount"] - order["amount_paid"], 0)
            if order["amount_due"] == 0:
                order["status"] = "paid"
        link = self.store.payment_links.get(payment.get("_link_id") or "")
        if link is not None:
            self._link_paid(link, payment)
        self.store.save()
        self.webhooks.publish("payment.captured", {"payment": payments.webhook_view(payment)})
        if order is not None and order["status"] == "paid":
            self.webhooks.publish("order.paid", {"payment": payments.webhook_view(payment), "order": public(order)})
        if link is not None:
            event = "payment_link.paid" if link["status"] == "paid" else "payment_link.partially_paid"
            entities = {"payment_link": public(link), "payment": payments.webhook_view(payment)}
            if order is not None:
                entities["order"] = public(order)
            self.webhooks.publish(event, entities)

    def _link_paid(self, link: Obj, payment: Obj) -> None:
        link["amount_paid"] += payment["amount"]
        link["status"] = "paid" if link["amount_paid"] >= link["amount"] else "partially_paid"
        link["updated_at"] = now()
        link["payments"] = (link["payments"] or []) + [
            {
                "amount": payment["amount"],
                "created_at": payment["created_at"],
                "method": payment["method"],
                "payment_id": payment["id"],
                "plink_id": link["id"],
                "status": "captured",
                "updated_at": now(),
            }
        ]

    # ---- refunds
    def refund(self, payment_id: str, body: dict[str, Any], idempotency_key: str | None = None) -> Obj:
        if idempotency_key and idempotency_key in self.store.refund_keys:
            return self.store.get("refunds", self.store.refund_keys[idempotency_key])
        validation.reject_unknown(body, validation.REFUND_FIELDS)
        payment = self.store.get("payments", payment_id)
        if payment["status"] not in ("captured", "refunded"):
            raise bad_request("Payment has not been captured. Only captured payments can be refunded")
        refundable = payment["amount"] - payment["amount_refunded"]
        if refundable <= 0:
            raise bad_request("The payment has been fully refunded already")
        amount = validation.amount(body, payment["currency"], required=False)
        amount = refundable if amount is None else amount
        if amount > refundable:
            raise bad_request("The refund amount provided is greater than amount captured", "amount")
        speed = body.get("speed") or "normal"
        if speed not in ("normal", "optimum"):
            raise bad_request("The selected speed is invalid.", "speed")
        refund: Obj = {
            "id": new_id("rfnd"),
            "entity": "refund",
            "amount": amount,
            "receipt": validation.text(body, "receipt", validation.MAX_RECEIPT),
            "currency": payment["currency"],
            "payment_id": payment["id"],
            "notes": validation.notes(body),
            "acquirer_data": {"arn": None},
            "created_at": now(),
            "batch_id": None,
            "status": "pending",
            "speed_processed": None,
            "speed_requested": speed,
        }
        self.store.refunds[refund["id"]] = refund
        if idempotency_key:
            self.store.refund_keys[idempotency_key] = refund["id"]
        self._apply_refund_amount(payment, amount)
        if self.fail_next_refunds > 0:
            self.fail_next_refunds -= 1
            self.fail_refund_ids.add(refund["id"])
        self.store.save()
        self._publish_refund("refund.created", refund, payment)
        if self.refund_settlement == "auto":
            self._schedule_settlement(refund["id"])
        return refund

    def _schedule_settlement(self, refund_id: str) -> None:
        def settle() -> None:
            self._timers.discard(timer)
            self.settle_refund(refund_id)

        timer = asyncio.get_running_loop().call_later(self.refund_settle_seconds, settle)
        self._timers.add(timer)

    def resume(self) -> None:
        """After a restart from the state file, refunds left pending settle as they would have."""
        if self.refund_settlement == "auto":
            for refund in list(self.store.refunds.values()):
                if refund["status"] == "pending":
                    self._schedule_settlement(refund["id"])

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def _apply_refund_amount(self, payment: Obj, delta: int) -> None:
        payment["amount_refunded"] += delta
        refunded = payment["amount_refunded"]
        payment["refund_status"] = None if refunded == 0 else ("full" if refunded >= payment["amount"] else "partial")
        payment["status"] = "refunded" if payment["refund_status"] == "full" else "captured"

    def settle_refund(self, refund_id: str, outcome: str | None = None) -> Obj | None:
        """Finish a pending refund: processed, or failed when armed (or when `outcome` says so)."""
        refund = self.store.refunds.get(refund_id)
        if refund is None or refund["status"] != "pending":
            return refund
        payment = self.store.payments.get(refund["payment_id"])
        fail = outcome == "failed" or (outcome is None and refund_id in self.fail_refund_ids)
        self.fail_refund_ids.discard(refund_id)
        if fail:
            refund["status"] = "failed"
            if payment is not None:
                self._apply_refund_amount(payment, -refund["amount"])
        else:
            refund["status"] = "processed"
            refund["speed_processed"] = "instant" if refund["speed_requested"] == "optimum" else "normal"
            refund["acquirer_data"] = {"arn": payments._digits(14)}
        self.store.save()
        self._publish_refund("refund.failed" if fail else "refund.processed", refund, payment)
        return refund

    def _publish_refund(self, event: str, refund: Obj, payment: Obj | None) -> None:
        entities = {"refund": public(refund)}
        if payment is not None:
            entities["payment"] = payments.webhook_view(payment)
        self.webhooks.publish(event, entities)
