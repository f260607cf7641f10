"""A partial credit note on an unpaid invoice, through the real mesh: invoicing issues it, its credit_note.issued
reaches payments through JetStream, and payments collects the amount due from then on. Paying the new order
through the Razorpay sandbox settles the invoice in invoicing with nothing over-paid; paying the old order instead
is still the invoice's payment (the over-payment on invoicing's review list, not lost). The open payment link is
cancelled at the sandbox and one made for the amount due. (Stripe: test_stripe_partial_credit.py.)"""

from __future__ import annotations

import secrets

from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.payments.v1 import events_pb2
from billing.payments.v1 import payments_pb2 as pay
from tests.integration.payments.conftest import (
    collection,
    created_order,
    eventually,
    issue_invoice,
)
from tests.integration.payments.jetstream import payments_events

# A quarter of the INR 100.00 base fee: 25.00 + 18% GST 4.50 = 29.50 off 118.00.
CREDITED = 2950
DUE = 11800 - CREDITED


async def credit_a_quarter(invoicing_stub, invoice_id: str) -> inv.CreditNote:
    reply = await invoicing_stub.CreateCreditNote(inv.CreateCreditNoteRequest(
        invoice_id=invoice_id, lines=[inv.CreditNoteLineRequest(line_number=1, amount_minor=2500)],
        reason_code=inv.CREDIT_NOTE_REASON_SERVICE_ISSUE, reason="Outage on 12 Oct: a quarter of the base fee back",
        outcome=inv.CREDIT_NOTE_OUTCOME_REFUND, idempotency_key=secrets.token_hex(8)))
    note = reply.credit_note
    assert (note.total_minor, note.applied_to_due_minor) == (CREDITED, CREDITED)
    return note


async def remade_order(stub, invoice_id: str, old: str) -> pay.Order:
    reply = await eventually(lambda: collection(stub, invoice_id),
                             lambda r: r.order.status == pay.ORDER_STATUS_CREATED and r.order.provider_order_id != old,
                             what="the order remade for the amount due")
    return reply.order


async def invoicing_invoice(invoicing_stub, invoice_id: str) -> inv.Invoice:
    return (await invoicing_stub.GetInvoice(inv.GetInvoiceRequest(invoice_id=invoice_id))).invoice


async def settled(invoicing_stub, invoice_id: str, paid_minor: int) -> inv.Invoice:
    return await eventually(lambda: invoicing_invoice(invoicing_stub, invoice_id),
                            lambda i: i.status == inv.INVOICE_STATUS_PAID and i.amount_paid_minor == paid_minor,
                            what="invoicing marking the invoice paid")


async def over_payments(invoicing_stub, invoice: inv.Invoice) -> list[inv.ReviewItem]:
    items = (await invoicing_stub.ListReviewItems(inv.ListReviewItemsRequest(
        organisation_id=invoice.organisation_id, page_size=500))).review_items
    return [i for i in items if i.invoice_id == invoice.id and i.kind == inv.REVIEW_ITEM_KIND_OVER_PAYMENT]


async def test_the_amount_due_is_collected_on_a_new_order_and_the_open_link_is_made_again(collecting,
                                                                                          invoicing_stub, invoicing):
    invoice = await issue_invoice(invoicing_stub, invoicing)
    old = await created_order(collecting.stub, invoice.id)
    before = await collection(collecting.stub, invoice.id)
    assert (before.total_minor, before.amount_credited_minor, before.amount_due_minor) == (11800, 0, 11800)
    link = (await collecting.stub.CreatePaymentLink(pay.CreatePaymentLinkRequest(invoice_id=invoice.id))).payment_link
    assert link.amount_minor == 11800

    note = await credit_a_quarter(invoicing_stub, invoice.id)
    assert (await invoicing_invoice(invoicing_stub, invoice.id)).amount_due_minor == DUE
    order = await remade_order(collecting.stub, invoice.id, old.provider_order_id)
    assert (order.amount_minor, order.currency) == (DUE, "INR")
    # What a client reads instead of working "due" out of total, captured and refunded (118.00 - 0 - 0 is wrong).
    after = await collection(collecting.stub, invoice.id)
    assert (after.total_minor, after.amount_captured_minor, after.amount_refunded_minor) == (11800, 0, 0)
    assert (after.amount_credited_minor, after.amount_due_minor) == (CREDITED, DUE)
    rest = (await collecting.http.get(f"/api/v1/admin/invoices/{invoice.id}/payments")).json()
    assert (rest["total"], rest["amount_captured"], rest["amount_credited"], rest["amount_due"]) == (
        "118.00", "0.00", "29.50", "88.50")
    assert (rest["amount_credited_minor"], rest["amount_due_minor"]) == (CREDITED, DUE)
    made = collecting.sandbox.sandbox.store.get("orders", order.provider_order_id)
    assert (made["amount"], made["receipt"], made["notes"]["invoice_id"]) == (DUE, f"{invoice.number}#O2", invoice.id)
    checkout = (await collecting.stub.GetCheckout(pay.GetCheckoutRequest(invoice_id=invoice.id))).checkout
    assert (checkout.order_id, checkout.amount_minor) == (order.provider_order_id, DUE)
    assert checkout.checkout_url.endswith(order.provider_order_id)

    # The link for 118.00 is cancelled at the sandbox, and one for the amount due made in its place.
    links = await eventually(lambda: collection(collecting.stub, invoice.id),
                             lambda r: {x.status for x in r.payment_links} == {"cancelled", "created"},
                             what="the link cancelled and made again")
    by_status = {x.status: x for x in links.payment_links}
    assert by_status["cancelled"].id == link.id
    store = collecting.sandbox.sandbox.store
    assert store.get("payment_links", link.provider_link_id)["status"] == "cancelled"
    again = by_status["created"]
    assert again.amount_minor == DUE and store.get("payment_links", again.provider_link_id)["amount"] == DUE
    handed = (await collecting.stub.CreatePaymentLink(pay.CreatePaymentLinkRequest(invoice_id=invoice.id)))
    assert (handed.payment_link.id, handed.created) == (again.id, False)

    await collecting.sandbox.control.pay_order(order.provider_order_id, method="upi", vpa="acme@okhdfc")
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == DUE, what="the capture")
    assert paid.order.status == pay.ORDER_STATUS_PAID
    assert (paid.amount_credited_minor, paid.amount_due_minor) == (CREDITED, 0)
    settled_invoice = await settled(invoicing_stub, invoice.id, DUE)
    assert (settled_invoice.amount_due_minor, settled_invoice.amount_credited_minor) == (0, CREDITED)
    assert await over_payments(invoicing_stub, invoice) == []
    events = await payments_events(collecting.payments.js, invoice.id)
    assert [e.amount_minor for e in events if isinstance(e, events_pb2.PaymentCaptured)] == [DUE]
    assert note.number.startswith("CN/")


async def test_paying_the_old_order_instead_is_recorded_against_the_invoice_as_an_over_payment(collecting,
                                                                                              invoicing_stub,
                                                                                              invoicing):
    invoice = await issue_invoice(invoicing_stub, invoicing)
    old = await created_order(collecting.stub, invoice.id)
    await credit_a_quarter(invoicing_stub, invoice.id)
    await remade_order(collecting.stub, invoice.id, old.provider_order_id)

    # A customer who opened Checkout before the credit note pays the original total on the old order.
    await collecting.sandbox.control.pay_order(old.provider_order_id, method="upi", vpa="acme@okhdfc")
    paid = await eventually(lambda: collection(collecting.stub, invoice.id),
                            lambda r: r.amount_captured_minor == 11800, what="the capture on the old order")
    [payment] = paid.payments
    assert (payment.provider_order_id, payment.amount_minor, payment.invoice_id) == (
        old.provider_order_id, 11800, invoice.id)
    await settled(invoicing_stub, invoice.id, 11800)
    [review] = await eventually(lambda: over_payments(invoicing_stub, invoice), what="the over-payment on review")
    assert (review.amount_minor, review.currency) == (CREDITED, "INR")
