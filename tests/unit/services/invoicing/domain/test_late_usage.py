"""Late usage priced as the difference an earlier period's events make (``domain/late_usage.py``): on constructed
invoices, and as a property over generated plans and arrivals in JPY, INR and KWD: however events of a period
arrive (on time, then in any number of late batches), what its invoice and the adjustments bill is exactly what
the period priced at once from all its events would have billed. Nothing lost, nothing doubled."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import FailedPrecondition
from services.invoicing.domain.invoice import Invoice, LineKind
from services.invoicing.domain.invoice_builder import SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from services.invoicing.domain.late_usage import LateUsage, late_usage
from services.invoicing.domain.plan import PlanCharge
from tests.unit.services.invoicing.domain.invoice_fixtures import (
    D,
    billing,
    graduated,
    per_unit,
    plan_version,
    usage,
    whole,
)

NAMES = {"api_calls": "API calls", "tokens": "Tokens"}


def invoice_of(charges: tuple[PlanCharge, ...], currency: str = "INR", late: tuple[LateUsage, ...] = (),
               **quantities: str) -> Invoice:
    version = plan_version("pv", "Standard", currency, "100", charges)
    return build_invoice("inv", replace(billing((SegmentUsage(whole(), version, usage(**quantities)),),
                                                currency=currency), late_usage=late))


TIERED = (graduated("api_calls", ("1000", "0"), ("10000", "0.05"), (None, "0.02")),
          per_unit("tokens", "0.0004", minimum_amount=D(50)))


def test_the_difference_is_priced_at_the_tier_the_whole_period_reaches():
    billed = invoice_of(TIERED, api_calls="2100", tokens="1000")
    now = invoice_of(TIERED, api_calls="11100", tokens="1000")
    # 11,100 calls: 9,000 x 0.05 + 1,100 x 0.02 = 472.00; 2,100 billed 55.00. Tokens under their minimum: same.
    assert late_usage(billed, now, [], NAMES) == [
        LateUsage("2026-11", "api_calls", "API calls", D(9000), 41_700, D(18), "998314"),
    ]


def test_adjustments_already_billed_for_the_period_are_taken_off_and_others_ignored():
    billed = invoice_of(TIERED, api_calls="2100", tokens="0")
    first = invoice_of(TIERED, api_calls="3100", tokens="0")
    (earlier,) = late_usage(billed, first, [], NAMES)
    later = invoice_of(TIERED, late=(earlier,), api_calls="0", tokens="0")
    (line,) = [line for line in later.lines if line.kind is LineKind.USAGE_ADJUSTMENT]
    assert (line.adjusts_period_key, line.quantity, line.amount_minor) == ("2026-11", D(1000), 5_000)
    assert line.description == "API calls: late usage of period 2026-11" and line.unit_price == D("0.05")
    other_period = replace(line, adjusts_period_key="2026-10")
    assert late_usage(billed, first, [line], NAMES) == []  # billed already
    assert late_usage(billed, first, [other_period], NAMES) == [earlier]  # another period's adjustment
    validate_invoice(later)


def test_token_usage_above_the_minimum_moves_the_minimum_line_and_the_usage_together():
    billed = invoice_of(TIERED, api_calls="0", tokens="100000")  # 40.00, topped up to the 50.00 minimum
    now = invoice_of(TIERED, api_calls="0", tokens="200000")  # 80.00
    assert late_usage(billed, now, [], NAMES) == [
        LateUsage("2026-11", "tokens", "Tokens", D(100000), 3_000, D(18), "998314"),
    ]


def test_less_usage_than_billed_gives_a_negative_adjustment_and_none_when_nothing_changed():
    gauge = (per_unit("storage_gb", "0.0125"),)
    billed = invoice_of(gauge, storage_gb="74400")
    assert late_usage(billed, invoice_of(gauge, storage_gb="74400"), [], NAMES) == []
    (less,) = late_usage(billed, invoice_of(gauge, storage_gb="74320"), [], NAMES)
    assert (less.quantity, less.amount_minor, less.name) == (D(-80), -100, "storage_gb")


def test_another_currency_or_period_is_refused():
    billed = invoice_of(TIERED, api_calls="1")
    with pytest.raises(FailedPrecondition, match="in INR"):
        late_usage(billed, invoice_of(TIERED, currency="JPY", api_calls="1"), [], NAMES)
    with pytest.raises(FailedPrecondition, match="2026-10"):
        late_usage(billed, replace(billed, period_key="2026-10"), [], NAMES)


@given(
    st.sampled_from(["JPY", "INR", "KWD"]),
    st.lists(st.integers(1, 30_000), unique=True, max_size=3).map(sorted),
    st.lists(st.decimals(min_value=0, max_value=3, places=4), min_size=4, max_size=4),
    st.lists(st.integers(0, 20_000), min_size=1, max_size=6),
)
def test_however_events_arrive_the_period_is_billed_exactly_once(currency, bounds, prices, arrivals):
    tiers = tuple((str(bound), str(price)) for bound, price in zip(bounds, prices, strict=False))
    charges = (graduated("api_calls", *tiers, (None, str(prices[-1]))),)
    on_time, *late_batches = arrivals
    billed = invoice_of(charges, currency, api_calls=str(on_time))
    total, adjustments = on_time, []
    for arrived in late_batches:
        total += arrived
        now = invoice_of(charges, currency, api_calls=str(total))
        found = late_usage(billed, now, adjustments, NAMES)
        carrier = invoice_of(charges, currency, late=tuple(found), api_calls="0")
        validate_invoice(carrier)
        adjustments += [line for line in carrier.lines if line.kind is LineKind.USAGE_ADJUSTMENT]
    at_once = invoice_of(charges, currency, api_calls=str(total))

    def usage_minor(invoice: Invoice) -> int:
        return sum(line.amount_minor for line in invoice.lines if line.kind is LineKind.USAGE)

    assert usage_minor(billed) + sum(line.amount_minor for line in adjustments) == usage_minor(at_once)
    assert sum(line.quantity for line in adjustments) == total - on_time
    assert all(line.amount_minor >= 0 for line in adjustments)  # more usage never costs less
