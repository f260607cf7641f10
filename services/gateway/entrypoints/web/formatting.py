"""How the dashboard writes amounts and times for an organisation: money in its billing currency with the digit
grouping of its country's locale (Indian grouping for India: ₹1,23,456.78), with the currency's own number of
decimals (JPY 0, INR 2, KWD 3; CLDR's, through Babel), and times in its time zone. Amounts arrive as the API's
exact decimal strings and are never turned into floats. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import localedata
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, format_percent

DEFAULT_LOCALE = "en"


def locale_of(country: str) -> str:
    """English as written in ``country`` (``en_IN`` for India), or plain ``en`` where CLDR has no such locale."""
    if not country or not country.isalpha():
        return DEFAULT_LOCALE
    name = f"en_{country.upper()}"
    return name if localedata.exists(name) else DEFAULT_LOCALE


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _decimal(value: str | int | Decimal | None) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(value)
    except (InvalidOperation, ValueError):
        return None


@dataclass(frozen=True)
class Presentation:
    """One organisation's (or, for operators, UTC and plain English) way of writing money, numbers and times."""

    locale: str = DEFAULT_LOCALE
    time_zone: str = "UTC"

    @classmethod
    def of(cls, country: str, time_zone: str) -> Presentation:
        return cls(locale=locale_of(country), time_zone=zone_of(time_zone).key)

    def money(self, amount: str | int | Decimal | None, currency: str) -> str:
        """``"123456.78", "INR"`` -> ``₹1,23,456.78`` (en_IN); an amount that is no number shows as a dash."""
        value = _decimal(amount)
        if value is None or not currency:
            return "—"
        return format_currency(value, currency, locale=self.locale, currency_digits=True)

    def number(self, value: str | int | Decimal | None) -> str:
        """A quantity as written in the locale, every decimal kept (``1234567.5`` -> ``12,34,567.5`` in en_IN)."""
        number = _decimal(value)
        if number is None:
            return "—"
        # The locale's own pattern (its grouping), with every decimal of the exact value kept.
        return format_decimal(number, locale=self.locale, decimal_quantization=False)

    def percent(self, ratio: Decimal) -> str:
        return format_percent(ratio, locale=self.locale)

    def datetime(self, moment: datetime | None) -> str:
        """A moment in the organisation's zone, with the zone's abbreviation (``5 Dec 2026, 14:30:00 IST``)."""
        if moment is None:
            return "—"
        return format_datetime(moment, "d MMM y, HH:mm:ss zzz", tzinfo=zone_of(self.time_zone), locale=self.locale)

    def date(self, moment: datetime | date | None) -> str:
        """The local calendar day of a moment (or a date as it is)."""
        if moment is None:
            return "—"
        if isinstance(moment, datetime):
            moment = moment.astimezone(zone_of(self.time_zone)).date()
        return format_date(moment, "d MMM y", locale=self.locale)


    def period(self, start: datetime | None, end: datetime | None) -> str:
        """A billing period as its first and last local days (its end is exclusive: midnight of the next day)."""
        if start is None or end is None:
            return "—"
        return f"{self.date(start)} – {self.date(end - timedelta(microseconds=1))}"


@dataclass(frozen=True)
class Meter:
    """Usage against a quota: how full, and which band (``ok`` below 80 %, ``warning`` from 80 %, ``over`` from
    100 %); ``limit`` None means no quota (the bar is not drawn)."""

    used: Decimal
    limit: Decimal | None

    WARNING_AT = Decimal("0.8")

    @property
    def ratio(self) -> Decimal | None:
        if self.limit is None or self.limit <= 0:
            return None
        return self.used / self.limit

    @property
    def remaining(self) -> Decimal | None:
        return None if self.limit is None else max(self.limit - self.used, Decimal(0))

    @property
    def band(self) -> str:
        ratio = self.ratio
        if ratio is None:
            return "none"
        if ratio >= 1:
            return "over"
        return "warning" if ratio >= self.WARNING_AT else "ok"

    @property
    def percent_shown(self) -> int:
        """Width of the bar, 0 to 100 (usage past the quota fills it)."""
        ratio = self.ratio
        return 0 if ratio is None else int(min(ratio, Decimal(1)) * 100)

    @classmethod
    def of(cls, used: str, limit: str | None) -> Meter:
        return cls(used=_decimal(used) or Decimal(0), limit=_decimal(limit))
