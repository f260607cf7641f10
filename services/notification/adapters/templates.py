"""Rendering a message: subject, HTML and text from Jinja2 templates an operator may replace.

Templates are looked up in ``NOTIFICATION_TEMPLATE_DIR`` first, then in the built-in ``templates/`` folder, by
name: ``<kind>.subject.j2``, ``<kind>.html.j2`` (extending ``layout.html.j2``), ``<kind>.txt.j2``. HTML is
autoescaped; amounts are formatted exactly from minor units with the currency's ISO 4217 exponent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import iso4217
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.notification.domain.alerts import AlertKind, FiredAlert, ThresholdBasis, quantity, span
from services.notification.domain.messages import MessageKind
from services.notification.domain.notice import InvoiceFacts, Notice
from services.notification.domain.reminders import due_phrase

BUILT_IN = Path(__file__).resolve().parent.parent / "templates"


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class Branding:
    name: str = "Billing Platform"
    colour: str = "#1F4E79"
    footer: str = "This is an automated message about your account."


def _exponent(currency: str) -> int:
    try:
        return iso4217.Currency(currency).exponent or 0
    except ValueError:
        return 2


def money(amount_minor: int, currency: str) -> str:
    """``INR 1,178.82`` from 117882 paise: exact, grouped, with the currency's own number of decimals."""
    exponent = _exponent(currency)
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{currency} {value:,.{exponent}f}"


def money_text(amount: str, currency: str) -> str:
    """``INR 8,012.50`` from the decimal text "8012.5": grouped, rounded half up to the currency's own decimals
    (a projected amount may carry more). Text that is not a number is shown as it came."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        return f"{currency} {amount}".strip()
    if not value.is_finite():
        return f"{currency} {amount}".strip()
    exponent = _exponent(currency)
    value = value.quantize(Decimal(1).scaleb(-exponent), rounding=ROUND_HALF_UP)
    return f"{currency} {value:,.{exponent}f}".strip()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def alert_context(notice: Notice) -> dict[str, Any]:
    """What an alert's templates see: ``alert`` (the facts as metering sent them) and its figures formatted for
    reading: usage grouped ("1,000"), money with its currency ("INR 8,000.00"), times in the organisation's zone."""
    alert = FiredAlert.from_details(notice.details)
    zone = _zone(notice.details.get("time_zone", ""))

    def when(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%d %b %Y %H:%M %Z") if value else ""

    def figure(text: str) -> str:
        if not text:
            return ""
        money = alert.kind in (AlertKind.COST, AlertKind.CREDIT_BALANCE)
        return money_text(text, alert.currency) if money else quantity(text)

    quota = alert.quota()
    window = span(alert.window_seconds)
    percent = alert.kind is AlertKind.COST or alert.basis is ThresholdBasis.QUOTA_PERCENT
    return {
        "alert": alert, "customer_name": notice.details.get("customer_name", ""),
        "level": quantity(alert.level), "threshold": figure(alert.threshold), "value": figure(alert.value),
        "baseline": quantity(alert.baseline) if alert.baseline else "",
        "quota": quantity(str(quota)) if quota is not None else "",
        "budget": money_text(alert.budget, alert.currency) if alert.budget else "",
        "factor": quantity(alert.factor) if alert.factor else "",
        "min_volume": quantity(alert.min_volume) if alert.min_volume else "",
        # "80 %", "1,000,000"; empty for a spike, whose level is the spike itself.
        "level_text": "" if alert.kind in (AlertKind.SPIKE, AlertKind.CREDIT_BALANCE)
        else quantity(alert.level) + (" %" if percent else ""),
        # "1 hour" and "per hour"; "90 minutes" and "per 90 minutes".
        "window": window, "per_window": window.removeprefix("1 ") if window else "",
        "baseline_span": span(alert.baseline_seconds),
        "period_start": when(alert.period_start), "period_end": when(alert.period_end),
        "fired_at": when(alert.fire_time or notice.occurred_at), "event_time": when(alert.event_time),
    }


class Templates:
    def __init__(self, branding: Branding, operator_dir: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(operator_dir))] if operator_dir else []
        self._env = Environment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(str(BUILT_IN))]),
            autoescape=select_autoescape(["html", "html.j2"]), undefined=StrictUndefined, keep_trailing_newline=True,
        )
        self._branding = branding

    def render(self, notice: Notice, invoice: InvoiceFacts | None) -> Rendered:
        """``invoice``: the facts of the invoice the message is about; None for an alert, whose facts are the
        notice's."""
        context: dict[str, Any] = {
            "notice": notice, "invoice": invoice, "brand_name": self._branding.name,
            "brand_colour": self._branding.colour, "footer": self._branding.footer,
        }
        if invoice is not None:
            amount = notice.amount_minor if notice.amount_minor is not None else invoice.total_minor
            context.update({
                "total": money(invoice.total_minor, invoice.currency), "amount": money(amount, invoice.currency),
                "due_date": invoice.due_date.strftime("%d %b %Y") if invoice.due_date else "on receipt",
                # A reminder's "is due in 3 days" / "is due today" / "was due 2 days ago"; empty for other kinds.
                "due_phrase": (due_phrase(notice.reminder_offset_days)
                               if notice.reminder_offset_days is not None else ""),
            })
        if notice.kind is MessageKind.ALERT_TRIGGERED:
            context.update(alert_context(notice))
        kind = notice.kind.value
        subject = " ".join(self._env.get_template(f"{kind}.subject.j2").render(context).split())
        context["subject"] = subject
        return Rendered(subject, self._env.get_template(f"{kind}.html.j2").render(context),
                        self._env.get_template(f"{kind}.txt.j2").render(context))
