"""Invariants of spending prepaid credit (hypothesis), in JPY, INR and KWD: consumed never exceeds a grant's
balance nor the invoice total; the uses sum exactly to the credit lines and to total - amount due; expired,
pending and voided grants are never spent; and the spending order is respected (a later grant is touched only
when every earlier spendable one is used up)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.invoicing.domain.credit import (
    CreditGrant,
    GrantSource,
    GrantStatus,
    allocate_credits,
    apply_credits,
    spending_order,
)
from services.invoicing.domain.invoice_builder import build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from tests.unit.services.invoicing.domain.test_discount_properties import cases

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)
CURRENCIES = ("JPY", "INR", "KWD")


@st.composite
def grants(draw: st.DrawFn, currency: str) -> list[CreditGrant]:
    made = []
    for index in range(draw(st.integers(0, 6))):
        amount = draw(st.integers(1, 10**9))
        expires = draw(st.one_of(st.none(), st.integers(-5, 5).map(lambda d: NOW + timedelta(days=d))))
        made.append(CreditGrant(
            f"g_{index}", "org_1", draw(st.sampled_from([currency, currency, currency, "USD"])), amount,
            draw(st.integers(0, 3)), draw(st.sampled_from(list(GrantSource))),
            NOW - timedelta(days=draw(st.integers(1, 100))),
            draw(st.sampled_from([GrantStatus.AVAILABLE, GrantStatus.AVAILABLE, GrantStatus.PENDING,
                                  GrantStatus.VOIDED])),
            expires, consumed_minor=draw(st.integers(0, amount)),
        ))
    return made


@given(st.sampled_from(CURRENCIES).flatmap(lambda c: st.tuples(st.just(c), grants(c), st.integers(0, 5 * 10**9))))
def test_allocation_never_overspends_and_respects_order(case) -> None:
    currency, given_grants, payable = case
    uses = allocate_credits(given_grants, payable, currency, NOW)
    spent = sum(use.amount_minor for use in uses)
    spendable = [g for g in given_grants if g.currency == currency and g.spendable(NOW)]
    assert spent == min(payable, sum(g.remaining_minor for g in spendable))
    for use in uses:
        assert 0 < use.amount_minor <= use.grant.remaining_minor
        assert use.grant.spendable(NOW) and not use.grant.expired(NOW) and use.grant.currency == currency
    assert len({use.grant.id for use in uses}) == len(uses)
    ordered = sorted(spendable, key=spending_order)
    assert [use.grant.id for use in uses] == [g.id for g in ordered[: len(uses)]]
    # Every grant before the last one used is used up.
    assert all(use.amount_minor == use.grant.remaining_minor for use in uses[:-1])


@given(cases(), st.data())
def test_credits_tax_and_coupons_balance_to_the_minor_unit(billing_input, data: st.DataObject) -> None:
    invoice = build_invoice("inv_1", billing_input)
    given_grants = [replace(g, organisation_id=invoice.organisation_id) for g in data.draw(grants(invoice.currency))]
    credited = apply_credits(invoice, given_grants, NOW)
    validate_invoice(credited)
    assert credited.subtotal_minor + credited.tax_minor == credited.total_minor == invoice.total_minor
    assert credited.tax_lines == invoice.tax_lines  # credits never change the tax
    assert 0 <= credited.credits_minor <= credited.total_minor
    assert credited.credits_minor + credited.amount_due_minor == credited.total_minor
    by_grant = {g.id: g for g in given_grants}
    for line in credited.credit_lines:
        source = by_grant[line.credit_grant_id]
        assert -line.amount_minor <= source.remaining_minor and source.spendable(NOW)
