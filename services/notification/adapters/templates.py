"""Rendering a message: subject, HTML and text from Jinja2 templates an operator may replace.

Templates are looked up in ``NOTIFICATION_TEMPLATE_DIR`` first, then in the built-in ``templates/`` folder, by
name: ``<kind>.subject.j2``, ``<kind>.html.j2`` (extending ``layout.html.j2``), ``<kind>.txt.j2``. HTML is
autoescaped; amounts are formatted exactly from minor units with the currency's ISO 4217 exponent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import iso4217
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

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


def money(amount_minor: int, currency: str) -> str:
    """``INR 1,178.82`` from 117882 paise: exact, grouped, with the currency's own number of decimals."""
    try:
        exponent = iso4217.Currency(currency).exponent or 0
    except ValueError:
        exponent = 2
    value = Decimal(amount_minor).scaleb(-exponent)
    return f"{currency} {value:,.{exponent}f}"


class Templates:
    def __init__(self, branding: Branding, operator_dir: Path | None = None) -> None:
        loaders = [FileSystemLoader(str(operator_dir))] if operator_dir else []
        self._env = Environment(
            loader=ChoiceLoader([*loaders, FileSystemLoader(str(BUILT_IN))]),
            autoescape=select_autoescape(["html", "html.j2"]), undefined=StrictUndefined, keep_trailing_newline=True,
        )
        self._branding = branding

    def render(self, notice: Notice, invoice: InvoiceFacts) -> Rendered:
        amount = notice.amount_minor if notice.amount_minor is not None else invoice.total_minor
        context = {
            "notice": notice, "invoice": invoice, "brand_name": self._branding.name,
            "brand_colour": self._branding.colour, "footer": self._branding.footer,
            "total": money(invoice.total_minor, invoice.currency), "amount": money(amount, invoice.currency),
            "due_date": invoice.due_date.strftime("%d %b %Y") if invoice.due_date else "on receipt",
            # A reminder's "is due in 3 days" / "is due today" / "was due 2 days ago"; empty for other kinds.
            "due_phrase": due_phrase(notice.reminder_offset_days) if notice.reminder_offset_days is not None else "",
        }
        kind = notice.kind.value
        subject = " ".join(self._env.get_template(f"{kind}.subject.j2").render(context).split())
        context["subject"] = subject
        return Rendered(subject, self._env.get_template(f"{kind}.html.j2").render(context),
                        self._env.get_template(f"{kind}.txt.j2").render(context))
