"""What payments collects for an issued invoice: its total less the prepaid credit invoicing spent on it."""

from __future__ import annotations

from billing.invoicing.v1 import events_pb2, invoicing_pb2
from services.payments.adapters.messages import invoice_from_issued


def test_payments_collect_the_total_less_prepaid_credit() -> None:
    invoice = invoicing_pb2.Invoice(id="inv_1", organisation_id="org_1", number="INV/2627/00001", currency="INR",
                                    total_minor=117882, credits_minor=80000, amount_due_minor=37882)
    assert invoice_from_issued(events_pb2.InvoiceIssued(event_id="e", invoice=invoice)).total_minor == 37882
    invoice.credits_minor = 0
    assert invoice_from_issued(events_pb2.InvoiceIssued(event_id="e", invoice=invoice)).total_minor == 117882
