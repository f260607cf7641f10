"""The body of every webhook, defined once.

```
{"type": "invoice.paid",                      # the event type an endpoint subscribes to
 "timestamp": "2026-12-05T10:00:00+00:00",    # when it happened (ISO 8601, UTC)
 "data": {
   "event_id": "evt_...",                     # the platform's event id
   "organisation_id": "org_...",
   "invoice": {"id", "number", "currency", "total_minor", "total", "issue_date", "due_date", "period"},
   "amount_minor": 117882, "amount": "1178.82",   # what the event is about (paid, refunded, due, failed)
   "payment_link_url": "...",                     # payment.retry_scheduled (and whenever known)
   "attempt_number": 1, "max_attempts": 3, "next_attempt_at": "...",   # payment.retry_scheduled
   "reason": "...",                               # payment.failed, refund.processed
   "offset_days": -3}}                            # invoice.reminder: days from the due date (negative: before)

{"type": "alert.triggered",
 "timestamp": "...",                          # when it fired
 "data": {
   "event_id": "alert.triggered:alf_...", "organisation_id": "org_...",
   "alert": {"id", "kind", "level", "threshold", "value", "period_start", "period_end", "fire_time",
             "metric_code", "project_id", "baseline", "currency", "event": {"id", "project_id", "time"}},
   "rule": {"id", "name", "kind", "metric_code", "project_id", "basis", "levels", "window_seconds",
            "baseline_seconds", "factor", "min_volume", "budget", "currency"}}}
```
Money is integer minor units plus the exact decimal text in the invoice's currency (ISO 4217 exponent), never a
float; an alert's amounts are the exact decimal strings metering computed (money with its ``currency``). Keys
that do not apply to an event type are left out, never null-filled.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import iso4217

from services.notification.domain.alerts import FiredAlert
from services.notification.domain.messages import MessageKind
from services.notification.domain.notice import InvoiceFacts, Notice
from services.notification.domain.webhooks import EVENT_TYPES, TEST_EVENT_TYPE


def amount_text(amount_minor: int, currency: str) -> str:
    """Exact decimal text of an amount in minor units: 117882 INR -> "1178.82", 500 JPY -> "500"."""
    try:
        exponent = iso4217.Currency(currency).exponent or 0
    except ValueError:
        exponent = 2
    return str(Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent)))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def event_payload(event_type: str, notice: Notice, invoice: InvoiceFacts, now: datetime) -> dict[str, Any]:
    amount = notice.amount_minor if notice.amount_minor is not None else invoice.total_minor
    data: dict[str, Any] = {
        "event_id": notice.event_id,
        "organisation_id": invoice.organisation_id,
        "invoice": {
            "id": invoice.invoice_id, "number": invoice.number, "currency": invoice.currency,
            "total_minor": invoice.total_minor, "total": amount_text(invoice.total_minor, invoice.currency),
            "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
            "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
            "period": invoice.period_key,
        },
        "amount_minor": amount,
        "amount": amount_text(amount, invoice.currency),
    }
    if notice.payment_link_url:
        data["payment_link_url"] = notice.payment_link_url
    if notice.attempt_number:
        data.update(attempt_number=notice.attempt_number, max_attempts=notice.max_attempts)
    if notice.next_attempt_at:
        data["next_attempt_at"] = _iso(notice.next_attempt_at)
    if notice.reason:
        data["reason"] = notice.reason
    if notice.reminder_offset_days is not None:
        data["offset_days"] = notice.reminder_offset_days
    return {"type": event_type, "timestamp": _iso(notice.occurred_at or now), "data": data}


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in ("", None, 0, [], {})}


def alert_payload(event_id: str, alert: FiredAlert, now: datetime) -> dict[str, Any]:
    """``alert.triggered``: the fired level and the rule as it stood when it fired."""
    crossing = _present(id=alert.event_id, project_id=alert.event_project_id,
                        time=_iso(alert.event_time) if alert.event_time else None)
    fired = _present(
        id=alert.alert_id, kind=alert.kind.value, metric_code=alert.metric_code, project_id=alert.project_id,
        level=alert.level, threshold=alert.threshold, value=alert.value, baseline=alert.baseline,
        currency=alert.currency, event=crossing,
        period_start=_iso(alert.period_start) if alert.period_start else None,
        period_end=_iso(alert.period_end) if alert.period_end else None,
        fire_time=_iso(alert.fire_time) if alert.fire_time else None)
    rule = _present(
        id=alert.rule_id, name=alert.rule_name, kind=alert.kind.value, metric_code=alert.metric_code,
        project_id=alert.project_id, basis=alert.basis.value if alert.basis else None, levels=list(alert.levels),
        window_seconds=alert.window_seconds, baseline_seconds=alert.baseline_seconds, factor=alert.factor,
        min_volume=alert.min_volume, budget=alert.budget, currency=alert.currency if alert.budget else None,
        cost_basis=alert.cost_basis)
    return {"type": EVENT_TYPES[MessageKind.ALERT_TRIGGERED], "timestamp": _iso(alert.fire_time or now),
            "data": {"event_id": event_id, "organisation_id": alert.organisation_id, "alert": fired, "rule": rule}}


def webhook_test_payload(endpoint_id: str, organisation_id: str, now: datetime) -> dict[str, Any]:
    return {"type": TEST_EVENT_TYPE, "timestamp": _iso(now),
            "data": {"endpoint_id": endpoint_id, "organisation_id": organisation_id,
                     "message": "A test webhook: if its signature verifies, your endpoint is set up."}}


def body(payload: dict[str, Any]) -> str:
    """Compact JSON, kept as text: every attempt posts (and signs) the very same bytes."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
