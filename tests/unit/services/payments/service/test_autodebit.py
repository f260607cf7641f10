"""Mandates and debits over in-memory fakes: making a mandate, token webhooks (replayed, reordered), debits timed
before the due date, limits, one UPI debit per cycle, a failed debit left to dunning, and a worker that dies after
its request reached Razorpay."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from billing_runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.payments.adapters import messages
from services.payments.domain.dunning import DunningPolicy, DunningState
from services.payments.domain.entities import Invoice, InvoiceState
from services.payments.domain.mandate import DebitState, MandateState
from services.payments.domain.provider import Backoff
from services.payments.service import autodebit, dunning, invoices, mandates, webhooks
from tests.unit.services.payments.service.fake_mandates import Crash, FakeRecurring
from tests.unit.services.payments.service.fakes import rejection

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
DUE = date(2026, 12, 20)
DUE_AT = datetime(2026, 12, 20, 18, 30, tzinfo=UTC)  # the end of 20 Dec in Kolkata
BACKOFF = Backoff(timedelta(seconds=2), 2.0, timedelta(minutes=10))
RULES = dunning.DunningRules(DunningPolicy(max_attempts=2, retry_days=(1, 3)), "Asia/Kolkata")
DEBITS = autodebit.AutoDebitRules("Asia/Kolkata")
TEMPLATE = "https://pay.example/checkout/{order_id}"


@pytest.fixture
def rzp() -> FakeRecurring:
    return FakeRecurring()


def command(method: str = "upi", key: str = "k1", **overrides) -> mandates.CreateMandate:
    values = dict(organisation_id="org_1", method=method, max_amount_minor=1_500_000, customer_name="Acme",
                  customer_email="ap@acme.example", customer_contact="+919000090000", idempotency_key=key)
    return mandates.CreateMandate(**{**values, **overrides})


def token_event(event: str, token_id: str, customer_id: str, order_id: str = "", reason: str | None = None) -> bytes:
    entity = {"id": token_id, "entity": "token", "customer_id": customer_id, "order_id": order_id,
              "recurring_details": {"status": event.split(".")[1], "failure_reason": reason}}
    return json.dumps({"entity": "event", "event": event, "payload": {"token": {"entity": entity}}}).encode()


async def deliver(uow, event_id: str, event: str, body: bytes, now: datetime = NOW) -> str:
    return await webhooks.process(uow, webhooks.ReceivedWebhook("razorpay", event_id, event, body, now), now,
                                  timedelta(minutes=5))


async def confirmed_mandate(uow, rzp, method: str = "upi", max_amount: int = 1_500_000):
    mandate, _ = await mandates.create(uow, rzp, command(method, max_amount_minor=max_amount), TEMPLATE, NOW)
    await deliver(uow, "evt_confirm", "token.confirmed",
                  token_event("token.confirmed", "token_1", mandate.customer_id, mandate.auth_order_id))
    return mandate


async def issue(uow, invoice_id: str = "inv_1", total: int = 1_180_000, due: date = DUE,
                currency: str = "INR") -> Invoice:
    invoice = Invoice(invoice_id, "org_1", f"INV/2627/{invoice_id[-2:]}", currency, total, InvoiceState.OPEN,
                      due_date=due, customer_email="ap@acme.example", customer_name="Acme")
    await invoices.register_issued(uow, invoice, NOW, RULES, debits=DEBITS)
    return invoice


async def run(uow, rzp, now: datetime) -> int:
    return await autodebit.run_due(uow, rzp, rzp, DEBITS, now, BACKOFF)


async def test_a_mandate_is_made_once_per_key_and_one_live_per_organisation(uow, store, rzp):
    made, created = await mandates.create(uow, rzp, command(), TEMPLATE, NOW)
    assert created and made.state is MandateState.CREATED
    assert made.checkout_url == f"https://pay.example/checkout/{made.auth_order_id}?recurring=1&customer_id=" \
        + made.customer_id
    again, created = await mandates.create(uow, rzp, command(), TEMPLATE, NOW)
    assert (again.id, created) == (made.id, False)
    assert rzp.calls.count("create_authorisation_order") == 1
    with pytest.raises(AlreadyExists):
        await mandates.create(uow, rzp, command(key="k2"), TEMPLATE, NOW)
    with pytest.raises(InvalidArgument) as bad:
        await mandates.create(uow, rzp, command(key="k3", method="netbanking"), TEMPLATE, NOW)
    assert bad.value.field == "method"
    with pytest.raises(InvalidArgument) as bad:
        await mandates.create(uow, rzp, command(key="k4", max_amount_minor=10_000_001), TEMPLATE, NOW)
    assert bad.value.field == "max_amount_minor"
    assert len(store.mandates) == 1


async def test_without_a_hosted_page_a_mandate_carries_what_checkout_js_opens_it_with(uow, store, rzp):
    """Real Razorpay has no hosted page per order: no checkout_url, but the customer, the authorisation order and
    what the order takes, as Razorpay made it (kept, so a listing answers them too), and the key id in the answer."""
    upi, _ = await mandates.create(uow, rzp, command(), "", NOW)
    assert upi.checkout_url == "" and upi.customer_id and upi.auth_order_id.startswith("order_auth")
    assert (upi.auth_amount_minor, upi.auth_currency) == (100, "INR")
    await mandates.cancel(uow, rzp, upi.id)
    enach, _ = await mandates.create(uow, rzp, command("emandate", key="k2"), "", NOW)
    assert (enach.auth_amount_minor, enach.auth_currency) == (0, "INR")
    [listed] = await mandates.list_mandates(uow, "org_1", include_finished=False)
    assert (listed.id, listed.auth_amount_minor, listed.auth_currency) == (enach.id, 0, "INR")
    shown = messages.mandate_to_pb(listed, "rzp_live_1")
    assert (shown.key_id, shown.customer_id, shown.authorisation_order_id, shown.authorisation_amount_minor,
            shown.authorisation_currency, shown.checkout_url) == (
        "rzp_live_1", enach.customer_id, enach.auth_order_id, 0, "INR", "")


async def test_token_webhooks_are_deduplicated_and_only_move_forward(uow, store, rzp):
    made, _ = await mandates.create(uow, rzp, command(), TEMPLATE, NOW)
    cancelled = token_event("token.cancelled", "token_9", made.customer_id)
    confirmed = token_event("token.confirmed", "token_9", made.customer_id, made.auth_order_id)
    # Reordered: the cancellation arrives before the confirmation.
    assert (await deliver(uow, "evt_2", "token.cancelled", cancelled)).startswith("applied")
    assert (await deliver(uow, "evt_1", "token.confirmed", confirmed)).startswith("no change")
    assert await deliver(uow, "evt_1", "token.confirmed", confirmed) == "duplicate delivery"
    [(mandate, _)] = store.mandates.values()
    assert (mandate.state, mandate.token_id) == (MandateState.CANCELLED, "token_9")
    # A cancelled mandate makes room for a new one.
    second, created = await mandates.create(uow, rzp, command(key="k2"), TEMPLATE, NOW)
    assert created and second.id != made.id
    rejected = token_event("token.rejected", "token_10", second.customer_id, second.auth_order_id, "bank refused")
    assert (await deliver(uow, "evt_3", "token.rejected", rejected)).startswith("applied")
    assert store.mandates[second.id][0].reason == "bank refused"


async def test_an_invoice_is_debited_after_the_pre_debit_window_and_settled_by_the_capture(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "upi")
    invoice = await issue(uow)
    debit = store.debits[invoice.invoice_id]
    assert debit.debit_at == DUE_AT - timedelta(hours=25)
    assert debit.receipt == "INV/2627/_1#AD"
    assert await run(uow, rzp, debit.debit_at - timedelta(seconds=1)) == 0
    assert await run(uow, rzp, debit.debit_at) == 1
    debit = store.debits[invoice.invoice_id]
    assert debit.state is DebitState.REQUESTED and debit.provider_payment_id
    [order_id] = rzp.debits
    assert rzp.orders[order_id].notes["invoice_id"] == invoice.invoice_id
    notice = {"entity": "event", "event": "notification.delivered",
              "payload": {"notification": {"entity": {"order_id": order_id, "payment_id": debit.provider_payment_id}}}}
    await deliver(uow, "evt_n", "notification.delivered", json.dumps(notice).encode(), debit.debit_at)
    assert store.debits[invoice.invoice_id].notified_at == debit.debit_at
    captured = {"entity": "event", "event": "payment.captured", "payload": {"payment": {"entity": {
        "id": debit.provider_payment_id, "order_id": order_id, "amount": 1_180_000, "currency": "INR",
        "status": "captured", "captured": True, "method": "upi", "notes": {"invoice_id": invoice.invoice_id}}}}}
    outcome = await deliver(uow, "evt_c", "payment.captured", json.dumps(captured).encode())
    assert outcome.endswith("; debit captured")
    assert store.debits[invoice.invoice_id].state is DebitState.CAPTURED
    assert store.invoices[invoice.invoice_id].state is InvoiceState.SETTLED
    assert store.dunning[invoice.invoice_id][0].state is DunningState.STOPPED


async def test_a_worker_that_dies_after_its_request_never_debits_twice(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "emandate", max_amount=100_000_000)
    invoice = await issue(uow, total=5_000_000)  # ₹50,000.00 on eNACH
    start = store.debits[invoice.invoice_id].debit_at
    rzp.crash_after_request = True
    with pytest.raises(Crash):
        await run(uow, rzp, start)
    assert store.debits[invoice.invoice_id].state is DebitState.REQUESTED
    # Another worker (or the same one restarted) within the lease leaves it alone, then takes it up.
    assert await run(uow, rzp, start + timedelta(seconds=30)) == 0
    assert await run(uow, rzp, start + autodebit.LEASE) == 1
    [(order_id, payments)] = rzp.debits.items()
    assert len(payments) == 1
    assert store.debits[invoice.invoice_id].provider_payment_id == payments[0]
    assert rzp.calls.count("create_recurring_payment") == 1 and rzp.calls.count("create_order") == 1
    # And it is not asked again however often the worker runs.
    for hours in (1, 24, 48):
        await run(uow, rzp, start + timedelta(hours=hours))
    assert rzp.calls.count("create_recurring_payment") == 1


async def test_a_lost_order_answer_is_found_by_receipt(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "card")
    invoice = await issue(uow, total=11_800)
    start = store.debits[invoice.invoice_id].debit_at
    real = rzp.create_order

    async def made_then_lost(*args, **kwargs):
        await real(*args, **kwargs)
        raise Crash("the answer never came back")

    rzp.create_order = made_then_lost
    with pytest.raises(Crash):
        await run(uow, rzp, start)
    rzp.create_order = real
    await run(uow, rzp, start + autodebit.LEASE)
    assert len([o for o in rzp.orders.values() if o.receipt.endswith("#AD")]) == 1
    assert sum(len(p) for p in rzp.debits.values()) == 1


async def test_upi_above_the_limit_gets_a_link_and_an_email_at_once(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "upi", max_amount=10_000_000)
    invoice = await issue(uow, total=1_770_000)  # ₹15,000 + 18% GST = ₹17,700.00
    assert store.debits[invoice.invoice_id].next_at == NOW
    assert await run(uow, rzp, NOW) == 1
    debit = store.debits[invoice.invoice_id]
    assert debit.state is DebitState.LINKED and debit.link_url.startswith("https://rzp.io/")
    assert "15,000" in debit.reason
    assert rzp.debits == {}
    [sent] = [m for s, _, m in store.published if s == messages.AUTODEBIT_LINK_SENT]
    assert (sent.payment_link_url, sent.amount_due_minor, sent.method) == (debit.link_url, 1_770_000, "upi")


async def test_one_upi_debit_per_cycle_and_non_inr_invoices_are_not_debited(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "upi")
    first = await issue(uow, "inv_01", 11_800, date(2026, 12, 20))
    second = await issue(uow, "inv_02", 23_600, date(2026, 12, 28))
    january = await issue(uow, "inv_03", 11_800, date(2027, 1, 20))
    await run(uow, rzp, datetime(2027, 1, 25, tzinfo=UTC))
    states = {i.invoice_id: store.debits[i.invoice_id].state for i in (first, second, january)}
    assert states == {"inv_01": DebitState.REQUESTED, "inv_02": DebitState.LINKED, "inv_03": DebitState.REQUESTED}
    assert "one debit per cycle" in store.debits["inv_02"].reason
    jpy = await issue(uow, "inv_04", 5_000, currency="JPY")
    assert store.debits[jpy.invoice_id].next_at == NOW  # a link at once: INR only


async def test_a_failed_debit_leaves_the_invoice_to_dunning(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "card")
    invoice = await issue(uow, total=11_800)
    await run(uow, rzp, store.debits[invoice.invoice_id].debit_at)
    debit = store.debits[invoice.invoice_id]
    failed = {"entity": "event", "event": "payment.failed", "payload": {"payment": {"entity": {
        "id": debit.provider_payment_id, "order_id": debit.provider_order_id, "amount": 11_800, "currency": "INR",
        "status": "failed", "method": "card", "error_description": "insufficient funds",
        "notes": {"invoice_id": invoice.invoice_id}}}}}
    await deliver(uow, "evt_f", "payment.failed", json.dumps(failed).encode())
    debit = store.debits[invoice.invoice_id]
    assert debit.state is DebitState.FAILED and "dunning goes on" in debit.reason
    assert store.invoices[invoice.invoice_id].state is InvoiceState.OPEN
    assert store.dunning[invoice.invoice_id][0].state is DunningState.SCHEDULED
    assert messages.PAYMENT_FAILED in [s for s, _, _ in store.published]
    # A capture reported after the failure does not un-fail the debit (the payment itself is applied as usual).
    assert autodebit.DebitState.FAILED is store.debits[invoice.invoice_id].state


async def test_a_refused_debit_fails_and_a_paused_mandate_skips_its_debits(uow, store, rzp):
    mandate = await confirmed_mandate(uow, rzp, "card")
    first = await issue(uow, "inv_01", 11_800)
    rzp.failures = [rejection("the token is paused")]
    # find_order is not asked on a first attempt: the rejection is the order's.
    await run(uow, rzp, store.debits[first.invoice_id].debit_at)
    assert store.debits[first.invoice_id].state is DebitState.FAILED
    second = await issue(uow, "inv_02", 11_800, date(2026, 12, 27))
    paused = await mandates.pause(uow, rzp, mandate.id)
    assert paused.state is MandateState.PAUSED and rzp.tokens["token_1"] == "paused"
    await run(uow, rzp, store.debits[second.invoice_id].debit_at)
    assert store.debits[second.invoice_id].state is DebitState.SKIPPED
    with pytest.raises(FailedPrecondition):
        await mandates.pause(uow, rzp, mandate.id)
    cancelled = await mandates.cancel(uow, rzp, mandate.id)
    assert cancelled.state is MandateState.CANCELLED and rzp.tokens["token_1"] == "cancelled"
    third = await issue(uow, "inv_03", 11_800, date(2027, 1, 20))
    assert third.invoice_id not in store.debits  # no live mandate: collected as before


async def test_a_debit_whose_webhooks_were_lost_is_settled_by_looking(uow, store, rzp):
    await confirmed_mandate(uow, rzp, "upi")
    invoice = await issue(uow, total=11_800)
    await run(uow, rzp, store.debits[invoice.invoice_id].debit_at)
    debit = store.debits[invoice.invoice_id]
    assert debit.next_at == DUE_AT + autodebit.CHECK_AFTER_DUE
    rzp.debit_status[debit.provider_payment_id] = "captured"  # and no webhook ever arrives
    assert await run(uow, rzp, DUE_AT) == 0
    assert await run(uow, rzp, DUE_AT + autodebit.CHECK_AFTER_DUE) == 1
    assert store.debits[invoice.invoice_id].state is DebitState.CAPTURED
    assert store.invoices[invoice.invoice_id].state is InvoiceState.SETTLED
    assert rzp.calls.count("create_recurring_payment") == 1


async def test_the_organisations_own_people_list_debits_and_stop_only_their_own_mandate(uow, store, rzp):
    mandate = await confirmed_mandate(uow, rzp, "upi")
    first = await issue(uow, "inv_01", 11_800)
    second = await issue(uow, "inv_02", 11_800, date(2027, 1, 20))
    listed = await mandates.debits(uow, mandate.id, "org_1")
    assert [d.invoice_id for d in listed] == [second.invoice_id, first.invoice_id]  # the latest due first
    assert {d.state for d in listed} == {DebitState.SCHEDULED}
    # Another organisation's mandate is not found for it, exactly as a made-up one; nothing moves.
    for mandate_id in (mandate.id, "mdt_madeup"):
        with pytest.raises(NotFound):
            await mandates.debits(uow, mandate_id, "org_2")
        with pytest.raises(NotFound):
            await mandates.pause(uow, rzp, mandate_id, "org_2")
        with pytest.raises(NotFound):
            await mandates.cancel(uow, rzp, mandate_id, "org_2")
    assert store.mandates[mandate.id][0].state is MandateState.CONFIRMED and "token_1" not in rzp.tokens
    paused = await mandates.pause(uow, rzp, mandate.id, "org_1")
    assert (paused.state, paused.reason) == (MandateState.PAUSED, "paused by the organisation")
    cancelled = await mandates.cancel(uow, rzp, mandate.id, "org_1")
    assert (cancelled.state, cancelled.reason) == (MandateState.CANCELLED, "cancelled by the organisation")
    assert rzp.tokens["token_1"] == "cancelled"
