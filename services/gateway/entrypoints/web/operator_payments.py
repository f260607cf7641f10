"""Operators' pages for collecting money: the payments needing review (settlement's review items) with the latest
payments, an invoice's payments with its dunning state and a refund (amount, reason, confirmed), and the
reconciliation runs with their discrepancies (start one for a window of UTC days, read its report). Each calls the
admin API's own route functions: the refund is the API's (same idempotency, same audit entry ``refund.create``
with its reason), a run is the API's (audited ``reconciliation.run``)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from billing_runtime.errors import InvalidArgument, NotFound
from services.gateway.entrypoints.http import dunning, invoices, payments, reconciliation, settlement
from services.gateway.entrypoints.http import payment_schemas as pys
from services.gateway.entrypoints.http import reconciliation_schemas as rs
from services.gateway.entrypoints.http import settlement_schemas as ss
from services.gateway.entrypoints.http.money_text import minor_to_text
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.rendering import PREFIX, redirect, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
SHOW = Presentation()
PAGE = 50
# Idempotency keys the refund form carries (a double submit refunds once): the API bounds them too.
KEY_PATTERN = "rf-"


def _invalid(error: ValidationError) -> InvalidArgument:
    first = error.errors()[0]
    return InvalidArgument(first.get("msg", "is not valid"), field=str((first.get("loc") or ("form",))[-1]))


@router.get("/payments")
async def payments_page(request: Request, page_token: str = "",
                        resolved: Annotated[str, Query(max_length=64)] = "") -> Response:
    """What needs an operator first (open review items), then the latest payments, every status."""
    review = await settlement.list_review_items(request, state="open", organisation_id="", page_size=PAGE,
                                                page_token="")
    listed = await payments.list_payments(request, organisation_id="", invoice_id="", page_size=PAGE,
                                          page_token=page_token)
    return render(request, "operator/payments.html", review=review, listed=listed, show=SHOW, resolved=resolved,
                  title="Payments")


@router.post("/review-items/{review_item_id}/resolve")
async def resolve_review_item(review_item_id: str, request: Request) -> Response:
    """The API's resolve (audited ``review_item.resolve``), saying what was done; back to the list."""
    fields = await form_fields(request)
    try:
        body = ss.ReviewItemResolve(resolution=fields.get("resolution", ""))
    except ValidationError as error:
        raise _invalid(error) from None
    item = await settlement.resolve_review_item(review_item_id, body, request)
    return redirect(request, f"{PREFIX}/operator/payments?resolved={quote(item.id)}")


@router.get("/invoices/{invoice_id}/payments")
async def invoice_payments_page(invoice_id: str, request: Request, refunded: str = "") -> Response:
    """The invoice's order, payments (each captured one with a refund form), refunds and dunning; its amounts are
    payments' own (what credit notes took off and what is still being collected included)."""
    collected = await payments.invoice_payments(invoice_id, request)  # 404 until payments saw it issued
    invoice = await invoices.get_invoice(invoice_id, request)
    try:
        dunning_state: object = await dunning.get_dunning(invoice_id, request)
    except NotFound:
        dunning_state = None
    done = next((r for r in collected.refunds if r.id == refunded), None) if refunded else None
    return render(request, "operator/invoice_payments.html", collected=collected, invoice=invoice,
                  dunning=dunning_state, refunded=done, show=SHOW, new_key=lambda: KEY_PATTERN + secrets.token_hex(12),
                  left_of=_left,
                  title=f"Payments of {invoice.number or invoice.id}")


def _left(payment: pys.Payment) -> str | None:
    """What is left to refund of a payment, as decimal text in its currency (exact, from minor units)."""
    return minor_to_text(payment.amount_minor - payment.amount_refunded_minor, payment.currency)


@router.post("/payments/{payment_id}/refunds")
async def refund(payment_id: str, request: Request) -> Response:
    """The API's refund: ``amount`` as decimal text in the payment's currency (empty: everything not yet
    refunded), a ``reason`` (required by payments), and ``confirm`` ticked; the form's idempotency key makes a
    second submit return the first refund. Back to the invoice's payments, saying what was refunded."""
    fields = await form_fields(request)
    if fields.get("confirm") != "yes":
        raise InvalidArgument("tick the box to confirm the refund", field="confirm")
    amount = fields.get("amount", "").strip()
    try:
        body = pys.RefundCreate(amount=amount or None, reason=fields.get("reason", ""))
    except ValidationError as error:
        raise _invalid(error) from None
    key = fields.get("idempotency_key", "")
    if not key.startswith(KEY_PATTERN) or len(key) > 64:
        raise InvalidArgument("the form is out of date: reload the page", field="idempotency_key")
    made = await payments.create_refund(payment_id, body, request, Response(), idempotency_key=key)
    return redirect(request, f"{PREFIX}/operator/invoices/{quote(made.invoice_id)}/payments?refunded={quote(made.id)}")


# --- reconciliation ------------------------------------------------------------------------------------------


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


@router.get("/reconciliation")
async def reconciliation_page(request: Request, page_token: str = "") -> Response:
    runs = await reconciliation.list_reconciliation_runs(request, page_size=PAGE, page_token=page_token)
    today = datetime.now(UTC).date()
    return render(request, "operator/reconciliation.html", runs=runs, show=SHOW, title="Reconciliation",
                  default_from=_yesterday().isoformat(), default_to=today.isoformat())


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument("is not a day such as 2026-12-05", field=field) from None


def window_of(first: str, last: str, now: datetime) -> tuple[datetime, datetime]:
    """UTC days ``first`` to ``last`` inclusive as the API's window: from the first midnight to the midnight after
    the last day, or now if that is still to come (the API refuses a window ending in the future)."""
    start = datetime.combine(_day(first, "from_day"), time(), UTC)
    end = min(datetime.combine(_day(last, "to_day") + timedelta(days=1), time(), UTC), now)
    return start, end


@router.post("/reconciliation")
async def start_reconciliation(request: Request) -> Response:
    """The API's run (it compares to the end before answering); then its report."""
    fields = await form_fields(request)
    start, end = window_of(fields.get("from_day", ""), fields.get("to_day", ""), datetime.now(UTC))
    try:
        body = rs.ReconciliationRunCreate(start_time=start, end_time=end)
    except ValidationError as error:
        raise _invalid(error) from None
    run = await reconciliation.run_reconciliation(body, request)
    return redirect(request, f"{PREFIX}/operator/reconciliation/{quote(run.id)}")


@router.get("/reconciliation/{run_id}")
async def reconciliation_run_page(run_id: str, request: Request,
                                  resolved: Annotated[str, Query(max_length=64)] = "") -> Response:
    run = await reconciliation.get_reconciliation_run(run_id, request)
    return render(request, "operator/reconciliation_run.html", run=run, show=SHOW, resolved=resolved,
                  title=f"Reconciliation {run.id}")


@router.post("/discrepancies/{discrepancy_id}/resolve")
async def resolve_discrepancy(discrepancy_id: str, request: Request) -> Response:
    """The API's resolve (audited ``discrepancy.resolve``); back to the run's report."""
    fields = await form_fields(request)
    try:
        body = rs.DiscrepancyResolve(resolution=fields.get("resolution", ""))
    except ValidationError as error:
        raise _invalid(error) from None
    found = await reconciliation.resolve_discrepancy(discrepancy_id, body, request)
    return redirect(request, f"{PREFIX}/operator/reconciliation/{quote(found.run_id)}?resolved={quote(found.id)}")

