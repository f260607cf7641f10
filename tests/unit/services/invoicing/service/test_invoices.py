"""Invoice use cases against in-memory repositories: filters, and voiding only what is issued, once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.invoicing.adapters import messages
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.service import invoices
from tests.unit.services.invoicing.adapters.invoice_samples import draft, inr_intra_state
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def tables() -> Tables:
    issued = inr_intra_state()
    stored = [
        replace(issued, id="inv_01KAAAAAAAAAAAAAAAAAAAAAA1"),
        replace(draft(issued), id="inv_01KAAAAAAAAAAAAAAAAAAAAAA2"),
        replace(issued, id="inv_01KAAAAAAAAAAAAAAAAAAAAAA3", organisation_id="org_other", period_key="2026-09"),
    ]
    return Tables(invoices={invoice.id: invoice for invoice in stored})


async def test_an_issued_invoice_is_voided_with_its_reason_and_announced_once(tables):
    uow = FakeUnitOfWork(tables)
    voided = await invoices.void_invoice(uow, FakeOutbox(), invoice_id="inv_01KAAAAAAAAAAAAAAAAAAAAAA1",
                                         reason=" wrong address ", now=NOW)
    assert (voided.status, voided.void_reason, voided.voided_at) == (InvoiceStatus.VOID, "wrong address", NOW)
    assert tables.locks == ["invoice inv_01KAAAAAAAAAAAAAAAAAAAAAA1"]
    [(subject, event_id, message)] = tables.outbox
    assert subject == messages.INVOICE_VOIDED and message == messages.invoice_voided(event_id, voided)
    again = await invoices.void_invoice(FakeUnitOfWork(tables), FakeOutbox(),
                                        invoice_id="inv_01KAAAAAAAAAAAAAAAAAAAAAA1", reason="other", now=NOW)
    assert again == voided and len(tables.outbox) == 1


async def test_a_draft_cannot_be_voided_and_nothing_changes(tables):
    before = dict(tables.invoices)
    with pytest.raises(FailedPrecondition, match="is draft"):
        await invoices.void_invoice(FakeUnitOfWork(tables), FakeOutbox(), invoice_id="inv_01KAAAAAAAAAAAAAAAAAAAAAA2",
                                    reason="typo", now=NOW)
    assert tables.invoices == before and tables.outbox == []


@pytest.mark.parametrize(("invoice_id", "reason", "error", "field"), [
    ("inv_01KAAAAAAAAAAAAAAAAAAAAAA1", "  ", InvalidArgument, "reason"),
    ("inv_01KAAAAAAAAAAAAAAAAAAAAAA1", "x" * 501, InvalidArgument, "reason"),
    ("", "typo", InvalidArgument, "invoice_id"),
    ("inv_01KNOSUCHINVOICE000000000", "typo", NotFound, None),
])
async def test_void_refusals(tables, invoice_id, reason, error, field):
    with pytest.raises(error) as raised:
        await invoices.void_invoice(FakeUnitOfWork(tables), FakeOutbox(), invoice_id=invoice_id, reason=reason)
    assert raised.value.field == field and tables.outbox == []


async def test_get_and_list_with_filters_newest_first(tables):
    assert (await invoices.get_invoice(FakeUnitOfWork(tables), "inv_01KAAAAAAAAAAAAAAAAAAAAAA2")).status is (
        InvoiceStatus.DRAFT)
    with pytest.raises(NotFound):
        await invoices.get_invoice(FakeUnitOfWork(tables), "inv_01KNOSUCHINVOICE000000000")
    page, token = await invoices.list_invoices(FakeUnitOfWork(tables), page_size=2)
    rest, last = await invoices.list_invoices(FakeUnitOfWork(tables), page_size=2, page_token=token)
    assert [i.id[-1] for i in page + rest] == ["3", "2", "1"] and last == ""
    issued, _ = await invoices.list_invoices(FakeUnitOfWork(tables), status="issued", period_key="2026-10")
    assert [i.id[-1] for i in issued] == ["1"]
    with pytest.raises(InvalidArgument) as raised:
        await invoices.list_invoices(FakeUnitOfWork(tables), status="paid-ish")
    assert raised.value.field == "status"
    with pytest.raises(InvalidArgument) as raised:
        await invoices.list_invoices(FakeUnitOfWork(tables), period_key="October")
    assert raised.value.field == "period_key"
