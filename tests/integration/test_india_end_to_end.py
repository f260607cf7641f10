"""India end to end (issue 17): GST e-invoicing and Razorpay recurring auto-debit, one invoice all the way through
the real services.

Usage events go in through the gateway's REST API (with a project's API key) to ingest, JetStream and metering; an
invoice run of an invoicing service with e-invoicing on bills them; its registrar registers the invoice at the IRP
sandbox process (IRN + signed QR) and the PDF prints the QR, which decodes to the IRP's signed claims. The
organisation's UPI mandate was confirmed by the Razorpay sandbox's token.confirmed webhook (through the gateway and
JetStream); payments learns of the invoice from invoicing's ``invoice.issued`` (outbox -> JetStream) and schedules
the debit 25 hours before the invoice is due. Payments' auto-debit worker is run by the test at a clock it moves
(the fixtures of tests/integration/payments/test_autodebit.py): nothing before the window opens, one
``create/recurring`` after. The sandbox's clock is moved past the bank's notice period; its payment.captured and
order.paid webhooks settle the invoice in payments and then in invoicing. Replaying them changes nothing.

Everything runs against the session's PostgreSQL and NATS, shared with other tests: only this test's organisation,
invoice, order and token are looked at.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx

from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.metering.v1 import metering_pb2
from billing.payments.v1 import events_pb2 as payment_events
from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.messaging import stream_name
from tests.e2e.test_invoicing import previous_month_ist
from tests.integration.gateway.conftest import new_project
from tests.integration.invoicing.conftest import create_organisation, create_plan, run_to_completion, subscribe, terms
from tests.integration.invoicing.test_einvoicing import (
    ADDRESS,
    BUYER_GSTIN,
    REGISTERED,
    SUPPLIER_GSTIN,
    einvoicing,
    irp,
    registration,
    signed_qr_claims,
    stub,
)
from tests.integration.metering.conftest import define, whole_usage
from tests.integration.payments.conftest import Collecting, collection, eventually
from tests.integration.payments.jetstream import payments_events
from tests.integration.payments.test_autodebit import (
    Worker,
    collecting,
    confirmed_mandate,
    debit_of,
    worker,
)

# The fixtures this test shares with the e-invoicing and auto-debit tests: the IRP sandbox process and an invoicing
# service with e-invoicing on (and its stub); the Razorpay sandbox, payments and gateway, and the auto-debit worker
# at a clock the test sets.
__all__ = ["collecting", "einvoicing", "irp", "stub", "worker"]

IST = ZoneInfo("Asia/Kolkata")
BASE_SAC = "998315"  # the plan's: the base fee line
USAGE_SAC = "998319"  # the API-calls charge's own, on the larger line: the QR's MainHsnCode
PLAN = {
    "currency": "INR",
    "base_fee": "100",
    "sac_code": BASE_SAC,
    "charges": [{"metric_code": "api_calls", "display_name": "API calls", "sac_code": USAGE_SAC,
                 "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.5"}}],
}
TOTAL_PAISE = 70_800  # (100 + 1,000 calls x 0.50) + 9 % CGST + 9 % SGST = 708.00


def local_irn(supplier_gstin: str, issue_date: date, doc_type: str, number: str) -> str:
    """The IRN as NIC defines it, computed here: hex SHA-256 of supplier GSTIN + financial year ("2026-27") +
    document type + document number."""
    first = issue_date.year if issue_date.month >= 4 else issue_date.year - 1
    return hashlib.sha256(f"{supplier_gstin}{first}-{(first + 1) % 100:02d}{doc_type}{number.upper()}".encode()
                          ).hexdigest()


async def outcomes(collecting: Collecting, event_type: str) -> dict[str, list[str]]:
    """Payments' webhook log of one event type (newest first, enough for this test's): outcomes by event id."""
    listed = await collecting.stub.ListWebhookEvents(pay.ListWebhookEventsRequest(event_type=event_type,
                                                                                  page_size=500))
    found: dict[str, list[str]] = {}
    for event in listed.events:
        found.setdefault(event.event_id, []).append(event.outcome)
    return found


async def run_worker(worker: Worker) -> None:
    """Payments' auto-debit worker at the test's clock, round after round until nothing is due, as its own loop
    runs it (other tests' debits in the shared database may be due at that clock too, 20 a round)."""
    for _ in range(50):
        if not await worker.work().round():
            return
    raise AssertionError("the auto-debit worker still finds debits due after 50 rounds")


async def stored_webhooks(js) -> int:
    """The last sequence of the gateway's stream, where it stores every webhook it takes."""
    return (await js.stream_info(stream_name("gateway"))).state.last_seq


async def test_usage_to_an_einvoiced_invoice_paid_by_a_razorpay_auto_debit(
    collecting, worker, stub, irp, invoicing_stub, invoicing, ingest_stub, metering_stub
):
    sandbox = collecting.sandbox
    period_start, period_end = previous_month_ist(datetime.now(UTC))
    organisation_id = await create_organisation(
        invoicing_stub, invoicing, since=period_start - timedelta(days=10), gstin=BUYER_GSTIN, billing_address=ADDRESS,
        billing_email=f"ap-{secrets.token_hex(3)}@rangoli.example")

    # The organisation's UPI mandate: authorised at the sandbox's Checkout, confirmed by token.confirmed.
    mandate = await confirmed_mandate(collecting, organisation_id, pay.MANDATE_METHOD_UPI)
    [confirmed] = [e for e in await sandbox.control.events() if e["event"] == "token.confirmed"
                   and e["body"]["payload"]["token"]["entity"]["id"] == mandate.token_id]
    assert [o.startswith("applied") for o in (await outcomes(collecting, "token.confirmed"))[confirmed["event_id"]]] \
        == [True]

    # Last month's usage, sent through the gateway's REST API with the project's key (one event sent twice).
    await define(metering_stub, organisation_id, "api_calls", metering_pb2.AGGREGATION_SUM)
    _, _, key = await new_project(invoicing_stub, ingest_stub, organisation_id)
    sent = [{"idempotencyKey": f"call-{n}", "metricName": "api_calls", "metricValue": value,
             "timestamp": (period_end - timedelta(hours=n + 1)).isoformat()} for n, value in enumerate((600, 400))]
    async with httpx.AsyncClient(base_url=collecting.gateway_url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as api:
        response = await api.post("/api/v1/events", json=[*sent, sent[0]])
    assert response.status_code == 202, response.text
    assert (response.json()["accepted"], response.json()["duplicates"]) == (2, 1)
    await eventually(lambda: whole_usage(metering_stub, organisation_id, "api_calls", period_start, period_end),
                     lambda found: found[0] != "" and Decimal(found[0]) == 1000, what="metering to count 1,000 calls")

    # The invoice run of the e-invoicing service.
    plan = await create_plan(stub, terms(**PLAN))
    await subscribe(stub, organisation_id, plan.latest_version.id, start_date=period_start.date().isoformat())
    run = await run_to_completion(stub, period_start.strftime("%Y-%m"), organisation_id)
    assert run.invoiced == 1, run
    [listed] = (await stub.ListInvoices(inv.ListInvoicesRequest(organisation_id=organisation_id))).invoices
    invoice = (await stub.GetInvoice(inv.GetInvoiceRequest(invoice_id=listed.id))).invoice
    assert (invoice.status, invoice.currency, invoice.total_minor) == (inv.INVOICE_STATUS_ISSUED, "INR", TOTAL_PAISE)
    assert sorted((line.amount_minor, line.sac_code) for line in invoice.lines) == [(10_000, BASE_SAC),
                                                                                     (50_000, USAGE_SAC)]
    issue_date, due_date = date.fromisoformat(invoice.issue_date), date.fromisoformat(invoice.due_date)

    # Registered at the IRP under the IRN computed here; the PDF's QR is the IRP's signed record of this invoice.
    registered = await registration(stub, invoice.id, REGISTERED)
    assert registered.irn == local_irn(SUPPLIER_GSTIN, issue_date, "INV", invoice.number)
    assert (registered.document_type, registered.document_number) == ("INV", invoice.number)
    assert registered.irn in await irp.irns()
    pdf = await stub.RenderInvoice(inv.RenderInvoiceRequest(invoice_id=invoice.id, format=inv.INVOICE_FORMAT_PDF))
    claims = signed_qr_claims(pdf.content, irp)
    assert claims == {
        "SellerGstin": SUPPLIER_GSTIN, "BuyerGstin": BUYER_GSTIN, "DocNo": invoice.number, "DocTyp": "INV",
        "DocDt": issue_date.strftime("%d/%m/%Y"), "TotInvVal": 708.0, "ItemCnt": 2, "MainHsnCode": USAGE_SAC,
        "Irn": registered.irn,
        "IrnDt": registered.ack_time.ToDatetime(UTC).astimezone(IST).strftime("%Y-%m-%d %H:%M:%S"),
    }
    assert claims["TotInvVal"] * 100 == invoice.total_minor

    # Payments learnt of the invoice from invoice.issued: its debit starts 25 hours (UPI) before the due moment.
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_SCHEDULED)
    due_at = datetime.combine(due_date + timedelta(days=1), time(0), IST)
    opens = debit.debit_time.ToDatetime(UTC)
    assert debit.due_time.ToDatetime(UTC) == due_at and due_at - opens == timedelta(hours=25)
    assert (debit.mandate_id, debit.amount_minor, debit.currency) == (mandate.id, TOTAL_PAISE, "INR")
    assert opens > datetime.now(UTC) + timedelta(days=1)  # a real window ahead, not an overdue invoice's "at once"

    def on_token() -> list[dict]:
        """The sandbox's payments on the mandate's token, but for the authorisation payment that made it."""
        return [p for p in sandbox.sandbox.store.payments.values()
                if p.get("token_id") == mandate.token_id and p["order_id"] != mandate.authorisation_order_id]

    # A second before the window opens: the worker leaves the debit alone, and Razorpay has heard nothing.
    worker.now = opens - timedelta(seconds=1)
    await run_worker(worker)
    waiting = await debit_of(collecting, invoice.id)
    assert (waiting.state, waiting.attempts, waiting.provider_order_id) == (pay.DEBIT_STATE_SCHEDULED, 0, "")
    receipt = f"{invoice.number}#AD"
    assert on_token() == [] and not [o for o in sandbox.sandbox.store.orders.values() if o["receipt"] == receipt]

    # Once it is open: one create/recurring on the token, however often the worker runs (also once the debit is
    # looked at again, later the same day, before the bank has debited).
    worker.now = opens
    await run_worker(worker)
    await run_worker(worker)
    debit = await debit_of(collecting, invoice.id, pay.DEBIT_STATE_REQUESTED)
    worker.now = due_at + timedelta(hours=13)
    await run_worker(worker)
    [requested] = on_token()
    assert requested["recurring"] is True and requested["order_id"] == debit.provider_order_id
    assert (requested["status"], requested["amount"], requested["currency"]) == ("created", TOTAL_PAISE, "INR")
    assert requested["notes"]["invoice_id"] == invoice.id

    # The bank debits after the notice period (the sandbox's clock); payment.captured and order.paid arrive.
    assert (await sandbox.control.advance_clock(25 * 3600))["debited"] == 1
    events = await sandbox.control.events()
    [captured_event] = [e for e in events if e["event"] == "payment.captured"
                        and e["body"]["payload"]["payment"]["entity"]["id"] == requested["id"]]
    [paid_event] = [e for e in events if e["event"] == "order.paid"
                    and e["body"]["payload"]["order"]["entity"]["id"] == debit.provider_order_id]
    await debit_of(collecting, invoice.id, pay.DEBIT_STATE_CAPTURED)
    for event in (captured_event, paid_event):
        logged = await eventually(lambda event=event: outcomes(collecting, event["event"]),
                                  lambda found, event=event: event["event_id"] in found,
                                  what=f"payments to log {event['event']}")
        assert len(logged[event["event_id"]]) == 1
    collected = await eventually(lambda: collection(collecting.stub, invoice.id),
                                 lambda r: r.amount_captured_minor == TOTAL_PAISE, what="the capture")
    assert [(p.provider_payment_id, p.amount_minor, p.status) for p in collected.payments] == [
        (requested["id"], TOTAL_PAISE, pay.PAYMENT_STATUS_CAPTURED)]

    # Invoicing marks the invoice paid from payments' payment.captured.
    paid = await eventually(lambda: stub.GetInvoice(inv.GetInvoiceRequest(invoice_id=invoice.id)),
                            lambda r: r.invoice.status == inv.INVOICE_STATUS_PAID, what="the invoice paid")
    assert (paid.invoice.amount_paid_minor, paid.invoice.amount_due_minor) == (TOTAL_PAISE, 0)

    # Razorpay resends both webhooks: the gateway takes them (2xx) and nothing changes anywhere. (Within JetStream's
    # duplicate window, as here, the gateway's store keeps no second copy: payments is never handed them again.)
    js = collecting.payments.js
    await sandbox.control.wait_for_deliveries()
    stored = await stored_webhooks(js)
    for event in (captured_event, paid_event):
        again = await sandbox.control.redeliver(event["event_id"])
        await eventually(sandbox.control.deliveries,
                         lambda log, again=again: log[again["delivery_id"] - 1]["delivered"],
                         what=f"the replayed {event['event']}")
    assert await stored_webhooks(js) == stored
    for event in (captured_event, paid_event):
        assert len((await outcomes(collecting, event["event"]))[event["event_id"]]) == 1
    after = await collection(collecting.stub, invoice.id)
    assert (after.amount_captured_minor, [p.id for p in after.payments]) == (TOTAL_PAISE,
                                                                            [p.id for p in collected.payments])
    published = [m for m in await payments_events(js, invoice.id) if isinstance(m, payment_events.PaymentCaptured)]
    assert [(m.provider_payment_id, m.amount_minor) for m in published] == [(requested["id"], TOTAL_PAISE)]
    still = (await stub.GetInvoice(inv.GetInvoiceRequest(invoice_id=invoice.id))).invoice
    assert (still.status, still.amount_paid_minor, still.amount_due_minor) == (inv.INVOICE_STATUS_PAID, TOTAL_PAISE, 0)
    # A day on, the worker has nothing left to do for it.
    worker.now += timedelta(days=1)
    await run_worker(worker)
    final = await debit_of(collecting, invoice.id)
    assert (final.state, final.provider_payment_id) == (pay.DEBIT_STATE_CAPTURED, requested["id"])
    assert len(on_token()) == 1
