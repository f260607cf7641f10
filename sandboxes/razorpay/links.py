"""Payment links: a hosted page for an amount, paid through an order the link owns.

`reference_id` is unique among links that can still be paid; a link expires lazily (when read after
`expire_by`); cancelling a paid link is refused. The checkout signatures the merchant verifies live here too.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from sandboxes.razorpay.errors import bad_request
from sandboxes.razorpay.ids import new_id, now
from sandboxes.razorpay.ledger import Ledger
from sandboxes.razorpay.store import Obj, public
from sandboxes.razorpay.validation import link_request

OPEN = ("created", "partially_paid")


def hmac_hex(message: str, secret: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def payment_signature(order_id: str, payment_id: str, key_secret: str) -> str:
    """What Utility.verify_payment_signature checks: HMAC-SHA256 of `order_id|payment_id` with the key secret."""
    return hmac_hex(f"{order_id}|{payment_id}", key_secret)


def payment_link_signature(link: Obj, payment_id: str, key_secret: str) -> str:
    """What Utility.verify_payment_link_signature checks: `link_id|reference_id|status|payment_id`."""
    return hmac_hex(f"{link['id']}|{link['reference_id']}|{link['status']}|{payment_id}", key_secret)


@dataclass
class PaymentLinks:
    ledger: Ledger
    base_url: str = ""

    @property
    def store(self):  # noqa: ANN201 - the ledger's store
        return self.ledger.store

    def create(self, body: dict[str, Any]) -> Obj:
        fields = link_request(body)
        reference = fields["reference_id"]
        if reference and any(
            link["reference_id"] == reference and link["status"] in OPEN for link in self.store.payment_links.values()
        ):
            raise bad_request(f"Payment Link with reference_id {reference} already exists", "reference_id")
        order = self.ledger.create_order(
            {"amount": fields["amount"], "currency": fields["currency"], "notes": fields["notes"] or None,
             "partial_payment": fields["accept_partial"]}
        )
        link_id = new_id("plink")
        order["_link_id"] = link_id
        created = now()
        link: Obj = {
            "accept_partial": fields["accept_partial"],
            "amount": fields["amount"],
            "amount_paid": 0,
            "callback_method": fields["callback_method"],
            "callback_url": fields["callback_url"],
            "cancelled_at": 0,
            "created_at": created,
            "currency": fields["currency"],
            "customer": fields["customer"],
            "description": fields["description"],
            "expire_by": fields["expire_by"],
            "expired_at": 0,
            "first_min_partial_amount": fields["first_min_partial_amount"],
            "id": link_id,
            "notes": fields["notes"],
            "notify": fields["notify"],
            "order_id": order["id"],
            "payments": None,
            "reference_id": reference,
            "reminder_enable": fields["reminder_enable"],
            "reminders": [],
            "short_url": f"{self.base_url}/l/{link_id}",
            "status": "created",
            "updated_at": created,
            "upi_link": fields["upi_link"],
            "user_id": "",
        }
        self.store.payment_links[link_id] = link
        self.store.save()
        return link

    def get(self, link_id: str) -> Obj:
        link = self.store.get("payment_links", link_id)
        if link["status"] in OPEN and link["expire_by"] and link["expire_by"] <= now():
            link["status"] = "expired"
            link["expired_at"] = link["updated_at"] = now()
            self.store.save()
            self.ledger.webhooks.publish("payment_link.expired", {"payment_link": public(link)})
        return link

    def all(self) -> list[Obj]:
        return [self.get(link_id) for link_id in list(self.store.payment_links)]

    def cancel(self, link_id: str) -> Obj:
        link = self.get(link_id)
        if link["status"] not in OPEN:
            raise bad_request(f"Payment link cannot be cancelled in {link['status']} state")
        link["status"] = "cancelled"
        link["cancelled_at"] = link["updated_at"] = now()
        self.store.save()
        self.ledger.webhooks.publish("payment_link.cancelled", {"payment_link": public(link)})
        return link

    def pay(self, link_id: str, request: dict[str, Any]) -> Obj:
        """A payment attempt through the link's page; returns the payment."""
        link = self.get(link_id)
        if link["status"] not in OPEN:
            raise bad_request(f"Payment link is {link['status']} and cannot be paid")
        customer = link["customer"]
        request = {
            "email": customer.get("email"),
            "contact": customer.get("contact"),
            "description": link["description"] or None,
            **request,
            "_link_id": link_id,
        }
        return self.ledger.pay(link["order_id"], request)

    def callback_params(self, link: Obj, payment: Obj, key_secret: str) -> dict[str, str]:
        """The query Razorpay appends to a link's callback_url after a successful payment."""
        return {
            "razorpay_payment_id": payment["id"],
            "razorpay_payment_link_id": link["id"],
            "razorpay_payment_link_reference_id": link["reference_id"],
            "razorpay_payment_link_status": link["status"],
            "razorpay_signature": payment_link_signature(link, payment["id"], key_secret),
        }
