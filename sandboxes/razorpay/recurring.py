"""Recurring payments: customers, tokens (mandates on a card, UPI AutoPay or eNACH) and debits on them.

- ``POST /v1/customers`` makes a customer; with ``fail_existing: "0"`` the same email answers the customer made
  before (Razorpay's way of making the call safe to repeat).
- An authorisation order carries a ``token`` object (``max_amount``, ``expire_at``, ``frequency``) and a
  ``method`` (card, upi, emandate). Paying it at Checkout (``recurring: "1"``) makes the token: ``confirmed``
  (token.confirmed), ``rejected`` (token.rejected) or left ``initiated`` for the control API to decide, as a bank
  does for eNACH after a day or two.
- A token can be paused (token.paused) or cancelled (token.cancelled): by the merchant through the API, or by the
  customer in their bank app (the control API plays that part). A token only moves forward.
- ``POST /v1/payments/create/recurring`` on a fresh order makes a payment in state ``created`` and sends the
  pre-debit notification at once (``notification.delivered``, or ``notification.failed`` when armed). The bank
  debits after the notice period for the method (UPI 25 hours, cards 36 hours, eNACH 24 hours) on the sandbox's
  clock: then payment.authorized + payment.captured (and order.paid), or payment.failed when armed or when the token
  is no longer confirmed. Tests move the clock (``POST /_sandbox/clock/advance``) instead of waiting.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sandboxes.razorpay import payments, validation
from sandboxes.razorpay.errors import bad_request
from sandboxes.razorpay.ids import new_id, now
from sandboxes.razorpay.links import payment_signature
from sandboxes.razorpay.store import Obj, Store, public
from sandboxes.razorpay.webhooks import WebhookDispatcher

# Seconds between the pre-debit notification and the debit, by method.
NOTICE_SECONDS = {"upi": 25 * 3600, "card": 36 * 3600, "emandate": 24 * 3600}
TOKEN_STATES = ("initiated", "confirmed", "rejected", "paused", "cancelled")
# Where a token may go from each state (forward only).
TOKEN_MOVES = {
    "initiated": ("confirmed", "rejected", "cancelled"),
    "confirmed": ("paused", "cancelled"),
    "paused": ("cancelled",),
    "rejected": (),
    "cancelled": (),
}
DEBIT_FAILURE = {
    "error_code": "BAD_REQUEST_ERROR",
    "error_description": "The debit was declined by the customer's bank.",
    "error_source": "bank",
    "error_step": "payment_authorization",
    "error_reason": "payment_failed",
}


@dataclass
class Recurring:
    store: Store
    webhooks: WebhookDispatcher
    key_secret: str
    capture: Any = None  # the ledger's capture, set by the sandbox (it settles orders and sends their webhooks)
    fail: Any = None  # the ledger's failure
    fail_next_debits: int = 0
    fail_next_notifications: int = 0
    _timers: set[asyncio.TimerHandle] = field(default_factory=set)

    # ---- customers
    def create_customer(self, body: dict[str, Any]) -> Obj:
        validation.reject_unknown(body, frozenset({"name", "email", "contact", "fail_existing", "gstin", "notes"}))
        email = validation.text(body, "email", 64) or ""
        contact = validation.text(body, "contact", 15) or ""
        name = validation.text(body, "name", 50) or ""
        if not name:
            raise bad_request("The name field is required.", "name")
        existing = [c for c in self.store.customers.values() if email and c["email"] == email
                    and c["contact"] == contact]
        if existing:
            if str(body.get("fail_existing", "1")) == "0":
                return existing[0]
            raise bad_request("Customer already exists for the merchant", "email")
        customer: Obj = {"id": new_id("cust"), "entity": "customer", "name": name, "email": email,
                         "contact": contact, "gstin": body.get("gstin"), "notes": validation.notes(body),
                         "created_at": now()}
        self.store.customers[customer["id"]] = customer
        self.store.save()
        return customer

    # ---- tokens
    def authorised(self, order: Obj, payment: Obj, mandate: str) -> None:
        """An authorisation payment went through: make the token, confirmed or rejected (or initiated)."""
        asked = order["_token"]
        token: Obj = {
            "id": new_id("token"),
            "entity": "token",
            "token": new_id("tok")[4:],
            "bank": payment.get("bank") if order["_method"] == "emandate" else None,
            "wallet": None,
            "method": order["_method"],
            "vpa": {"username": "customer", "handle": "okhdfc", "name": None} if order["_method"] == "upi" else None,
            "card": dict(payment["_card"]) if "_card" in payment else None,
            "recurring": True,
            "recurring_details": {"status": "initiated", "failure_reason": None},
            "auth_type": asked["auth_type"],
            "mrn": None,
            "used_at": now(),
            "created_at": now(),
            "expired_at": asked["expire_at"],
            "max_amount": asked["max_amount"],
            "frequency": asked["frequency"],
            "customer_id": order["_customer_id"],
            "order_id": order["id"],
            "dcc_enabled": False,
            "notes": [],
        }
        self.store.tokens[token["id"]] = token
        payment["token_id"] = token["id"]
        payment["customer_id"] = order["_customer_id"]
        self.store.save()
        if mandate == "confirm":
            self.move(token["id"], "confirmed")
        elif mandate == "reject":
            self.move(token["id"], "rejected", "the customer's bank did not register the mandate")

    def move(self, token_id: str, state: str, reason: str | None = None) -> Obj:
        """Move a token forward and send its webhook; a move it cannot make is Razorpay's 400."""
        token = self.store.get("tokens", token_id)
        current = token["recurring_details"]["status"]
        if state == current:
            return token
        if state not in TOKEN_MOVES[current]:
            raise bad_request(f"The token is {current} and cannot be {state}.", "token")
        token["recurring_details"] = {"status": state, "failure_reason": reason}
        self.store.save()
        self.webhooks.publish(f"token.{state}", {"token": public(token)})
        return token

    def tokens_of(self, customer_id: str) -> list[Obj]:
        self.store.get("customers", customer_id)
        return [t for t in self.store.tokens.values() if t["customer_id"] == customer_id]

    def token_of(self, customer_id: str, token_id: str) -> Obj:
        token = self.store.get("tokens", token_id)
        if token["customer_id"] != customer_id:
            raise bad_request("The id provided does not exist")
        return token

    # ---- debits
    def create_recurring(self, body: dict[str, Any]) -> Obj:
        validation.reject_unknown(body, frozenset({"email", "contact", "amount", "currency", "order_id",
                                                   "customer_id", "token", "recurring", "description", "notes"}))
        if str(body.get("recurring")) not in ("1", "true", "True", "auto"):
            raise bad_request("The recurring field is required and must be 1.", "recurring")
        order = self.store.get("orders", str(body.get("order_id") or ""))
        customer_id = str(body.get("customer_id") or "")
        token = self.token_of(customer_id, str(body.get("token") or ""))
        amount = validation.amount(body, order["currency"])
        if body.get("currency", order["currency"]) != order["currency"]:
            raise bad_request("Currency should be same as the order currency", "currency")
        if amount != order["amount_due"] or order["status"] == "paid":
            raise bad_request("Payment amount should be equal to the order amount", "amount")
        if any(p["order_id"] == order["id"] and p["status"] != "failed" for p in self.store.payments.values()):
            raise bad_request("A payment is already in progress for this order", "order_id")
        status = token["recurring_details"]["status"]
        if status != "confirmed":
            raise bad_request(f"The token is {status}; only a confirmed token can be charged.", "token")
        if token["expired_at"] <= now():
            raise bad_request("The token has expired.", "token")
        if amount is not None and amount > token["max_amount"]:
            raise bad_request("The amount exceeds the maximum amount of the mandate.", "amount")
        method = token["method"]
        payment = payments.new_payment(order, method, {}, amount or 0, str(body.get("email") or ""),
                                       str(body.get("contact") or ""))
        payment.update(token_id=token["id"], customer_id=customer_id, recurring=True,
                       description=body.get("description"))
        if body.get("notes"):
            payment["notes"] = {**payment["notes"], **validation.notes(body)}
        payment["_payment_after"] = now() + NOTICE_SECONDS[method]
        order["attempts"] += 1
        order["status"] = "attempted"
        self.store.payments[payment["id"]] = payment
        token["used_at"] = now()
        notified = self.fail_next_notifications <= 0
        if not notified:
            self.fail_next_notifications -= 1
            payment["_notice_failed"] = True
        self.store.save()
        notification = {
            "id": new_id("notif"), "entity": "notification", "status": "delivered" if notified else "failed",
            "token_id": token["id"], "customer_id": customer_id, "payment_id": payment["id"],
            "order_id": order["id"], "amount": payment["amount"], "currency": payment["currency"],
            "method": method, "payment_after": payment["_payment_after"], "created_at": now(),
        }
        self.webhooks.publish("notification.delivered" if notified else "notification.failed",
                              {"notification": notification})
        self._schedule(NOTICE_SECONDS[method])
        return {"razorpay_payment_id": payment["id"], "razorpay_order_id": order["id"],
                "razorpay_signature": payment_signature(order["id"], payment["id"], self.key_secret)}

    def run_due(self) -> int:
        """Debit every recurring payment whose notice period has passed (by the sandbox clock)."""
        done = 0
        for payment in list(self.store.payments.values()):
            after = payment.get("_payment_after")
            if after is None or payment["status"] != "created" or after > now():
                continue
            done += 1
            token = self.store.tokens.get(payment.get("token_id") or "")
            confirmed = token is not None and token["recurring_details"]["status"] == "confirmed"
            if self.fail_next_debits > 0 or not confirmed or payment.get("_notice_failed"):
                if self.fail_next_debits > 0:
                    self.fail_next_debits -= 1
                reason = DEBIT_FAILURE if confirmed else {
                    **DEBIT_FAILURE, "error_description": "The mandate is no longer active.",
                    "error_reason": "mandate_not_active"}
                self.fail(payment, reason)
                continue
            payment["status"] = "authorized"
            self.store.save()
            self.webhooks.publish("payment.authorized", {"payment": payments.webhook_view(payment)})
            self.capture(payment)
        return done

    def _schedule(self, seconds: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def due() -> None:
            self._timers.discard(timer)
            self.run_due()

        timer = loop.call_later(seconds, due)
        self._timers.add(timer)

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
