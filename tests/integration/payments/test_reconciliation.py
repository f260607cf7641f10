"""Reconciliation against the sandbox: a clean window has nothing to report; every kind of mismatch injected at
the provider is found exactly once, stays one open discrepancy however many runs find it, and the gauge of open
discrepancies follows what operators resolve.

The window is given tightly around this module's payments: payments' database holds other modules' payments
(made at other sandboxes), and a window covering them would report those as missing at this sandbox.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import REGISTRY

from billing.payments.v1 import payments_pb2 as pay
from billing_runtime.timestamps import to_timestamp
from tests.integration.payments.conftest import Collecting, collection, created_order, eventually, issue_invoice


async def _run(collecting: Collecting, start: datetime) -> pay.RunReconciliationResponse:
    # The provider lists by whole seconds: let the last object's second pass before the window ends.
    await asyncio.sleep(1.1)
    reply = await collecting.stub.RunReconciliation(pay.RunReconciliationRequest(
        start_time=to_timestamp(start), end_time=to_timestamp(datetime.now(UTC))))
    assert reply.run.state == pay.RECONCILIATION_STATE_COMPLETED, reply.run.error
    return reply


async def _open(collecting: Collecting) -> list[pay.Discrepancy]:
    found: list[pay.Discrepancy] = []
    token = ""
    while True:
        page = await collecting.stub.ListDiscrepancies(pay.ListDiscrepanciesRequest(page_size=500, page_token=token))
        found.extend(page.discrepancies)
        if not (token := page.next_page_token):
            return found


async def _captured(collecting: Collecting, invoice_id: str) -> pay.Payment:
    reply = await eventually(lambda: collection(collecting.stub, invoice_id),
                             lambda r: [p.status for p in r.payments] == [pay.PAYMENT_STATUS_CAPTURED],
                             what="the capture")
    return reply.payments[0]


def _gauge() -> float | None:
    return REGISTRY.get_sample_value("billing_payments_open_discrepancies")


def _kinds(discrepancies, ids: set[str]) -> set[tuple[str, str]]:
    return {(pay.DiscrepancyKind.Name(d.kind), d.provider_id) for d in discrepancies if d.provider_id in ids}


async def test_every_kind_of_mismatch_is_found_once_and_stays_one_open_discrepancy(collecting, invoicing_stub,
                                                                                  invoicing):
    invoices = [await issue_invoice(invoicing_stub, invoicing) for _ in range(4)]
    orders = [await created_order(collecting.stub, invoice.id) for invoice in invoices]
    start = datetime.now(UTC)  # everything of ours in the window is paid from here on
    for order in orders:
        await collecting.sandbox.control.pay_order(order.provider_order_id, method="upi", vpa="acme@okhdfc")
    a, b, c, d = [await _captured(collecting, invoice.id) for invoice in invoices]
    ids = {p.provider_payment_id for p in (a, b, c, d)}

    clean = await _run(collecting, start)
    assert clean.run.payments_checked == 4 and clean.run.discrepancies == 0 and list(clean.discrepancies) == []

    control = collecting.sandbox.control
    await control.tamper_payment(a.provider_payment_id, amount=a.amount_minor - 1000)
    await control.tamper_payment(b.provider_payment_id, currency="USD")
    await control.tamper_payment(c.provider_payment_id, status="failed")
    await control.delete("payments", d.provider_payment_id)
    orphan = await control.create_orphan_payment(7700)
    ids.add(orphan["id"])
    expected = {("DISCREPANCY_KIND_AMOUNT_MISMATCH", a.provider_payment_id),
                ("DISCREPANCY_KIND_CURRENCY_MISMATCH", b.provider_payment_id),
                ("DISCREPANCY_KIND_STATUS_MISMATCH", c.provider_payment_id),
                ("DISCREPANCY_KIND_MISSING_PROVIDER", d.provider_payment_id),
                ("DISCREPANCY_KIND_MISSING_OURS", orphan["id"])}

    tampered = await _run(collecting, start)
    assert tampered.run.discrepancies == 5 and len(tampered.discrepancies) == 5
    assert _kinds(tampered.discrepancies, ids) == expected
    by_kind = {pay.DiscrepancyKind.Name(x.kind): x for x in tampered.discrepancies}
    assert by_kind["DISCREPANCY_KIND_AMOUNT_MISMATCH"].our_id == a.id
    assert not by_kind["DISCREPANCY_KIND_MISSING_OURS"].our_id
    opened = await _open(collecting)
    assert _kinds(opened, ids) == expected
    assert _gauge() == len(opened)

    again = await _run(collecting, start)
    assert _kinds(again.discrepancies, ids) == expected
    assert {x.id for x in again.discrepancies} == {x.id for x in tampered.discrepancies}  # the same ones
    assert {x.run_id for x in again.discrepancies} == {tampered.run.id}  # first found by the second run
    reopened = await _open(collecting)
    assert len(reopened) == len(opened) and _gauge() == len(opened)

    closing = by_kind["DISCREPANCY_KIND_MISSING_OURS"]
    resolved = (await collecting.stub.ResolveDiscrepancy(pay.ResolveDiscrepancyRequest(
        discrepancy_id=closing.id, resolution="taken on the old integration; booked by hand"))).discrepancy
    assert resolved.resolved and resolved.resolution.startswith("taken on")
    still_open = await _open(collecting)
    assert len(still_open) == len(opened) - 1 and closing.id not in {x.id for x in still_open}
    assert _kinds(still_open, ids) == expected - {("DISCREPANCY_KIND_MISSING_OURS", orphan["id"])}
    assert _gauge() == len(still_open)
