"""Prepaid credit grants: validation, spending order, expiry, and credit lines on an invoice (after tax)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from billing_runtime.errors import FailedPrecondition, InvalidArgument
from services.invoicing.domain.credit import (
    Clawback,
    CreditGrant,
    GrantSource,
    GrantStatus,
    allocate_credits,
    apply_credits,
    balances,
    claw_back,
    grant_terms,
)
from services.invoicing.domain.invoice import LineKind
from services.invoicing.domain.invoice_builder import SegmentUsage, build_invoice
from services.invoicing.domain.invoice_checks import validate_invoice
from tests.unit.services.invoicing.domain.invoice_fixtures import billing, per_unit, plan_version, usage, whole

NOW = datetime(2026, 12, 1, 6, tzinfo=UTC)


def grant(gid: str, amount: int, *, priority: int = 0, expires: datetime | None = None, created_min: int = 0,
          consumed: int = 0, status: GrantStatus = GrantStatus.AVAILABLE, currency: str = "INR") -> CreditGrant:
    return CreditGrant(gid, "org_1", currency, amount, priority, GrantSource.GRANTED,
                       NOW - timedelta(days=30) + timedelta(minutes=created_min), status, expires,
                       consumed_minor=consumed)


def terms(**overrides: object):
    fields = dict(currency="INR", amount_minor=50_000, priority=0, source="granted", expires_at=None, source_id="",
                  description="welcome credit", organisation_currency="INR", now=NOW)
    fields.update(overrides)
    return grant_terms(**fields)  # type: ignore[arg-type]


def test_terms_accept_a_plain_grant() -> None:
    accepted = terms(expires_at=NOW + timedelta(days=1))
    assert (accepted.amount_minor, accepted.source) == (50_000, GrantSource.GRANTED)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"currency": "USD"}, "currency"),
    ({"currency": "X" * 10_000}, "currency"),
    ({"amount_minor": 0}, "amount_minor"),
    ({"amount_minor": -5}, "amount_minor"),
    ({"amount_minor": 10**18}, "amount_minor"),
    ({"amount_minor": True}, "amount_minor"),
    ({"priority": -1}, "priority"),
    ({"priority": 1001}, "priority"),
    ({"source": "gift"}, "source"),
    ({"expires_at": NOW}, "expires_at"),
    ({"expires_at": datetime(2030, 1, 1)}, "expires_at"),  # noqa: DTZ001 - a naive instant is the point
    ({"source": "credit_note"}, "source_id"),
    ({"source_id": "x" * 129}, "source_id"),
    ({"description": "two\nlines"}, "description"),
])
def test_terms_refuse_bad_input_naming_the_field(overrides: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        terms(**overrides)
    assert caught.value.field == field
    assert "X" * 20 not in str(caught.value)


def test_spent_by_priority_then_earliest_expiry_then_oldest() -> None:
    grants = [
        grant("g_late_prio", 1000, priority=5),
        grant("g_no_expiry_old", 1000, created_min=0),
        grant("g_expiring", 1000, expires=NOW + timedelta(days=3), created_min=9),
        grant("g_expiring_sooner", 1000, expires=NOW + timedelta(days=1), created_min=10),
        grant("g_no_expiry_new", 1000, created_min=5),
    ]
    uses = allocate_credits(grants, 4500, "INR", NOW)
    assert [(u.grant.id, u.amount_minor) for u in uses] == [
        ("g_expiring_sooner", 1000), ("g_expiring", 1000), ("g_no_expiry_old", 1000), ("g_no_expiry_new", 1000),
        ("g_late_prio", 500),
    ]


def test_expired_pending_voided_used_up_and_other_currency_grants_are_never_spent() -> None:
    grants = [
        grant("g_expired", 1000, expires=NOW),
        grant("g_pending", 1000, status=GrantStatus.PENDING),
        grant("g_voided", 1000, status=GrantStatus.VOIDED),
        grant("g_used", 1000, consumed=1000),
        grant("g_usd", 1000, currency="USD"),
        grant("g_ok", 1000, consumed=400),
    ]
    uses = allocate_credits(grants, 10_000, "INR", NOW)
    assert [(u.grant.id, u.amount_minor) for u in uses] == [("g_ok", 600)]
    assert [(b.currency, b.available_minor, b.pending_minor) for b in balances(grants, NOW)] == [
        ("INR", 600, 1000), ("USD", 1000, 0),
    ]


def _invoice():
    version = plan_version("pv", "Basic", "INR", "1000", (per_unit("api_calls", "0.5"),), gst_rate="18")
    return build_invoice("inv_1", billing((SegmentUsage(whole(), version, usage(api_calls="2000")),)))


def test_credits_pay_the_total_after_tax_one_line_per_grant() -> None:
    invoice = _invoice()
    assert (invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor) == (200_000, 36_000, 236_000)
    credited = apply_credits(invoice, [grant("g_a", 50_000, priority=1), grant("g_b", 30_000)], NOW)
    validate_invoice(credited)
    assert [(line.number, line.kind, line.amount_minor, line.credit_grant_id) for line in credited.credit_lines] == [
        (3, LineKind.CREDIT, -30_000, "g_b"), (4, LineKind.CREDIT, -50_000, "g_a"),
    ]
    # GST stays on the full taxable amount; the credit reduces only what is left to pay.
    assert (credited.tax_minor, credited.total_minor, credited.credits_minor) == (36_000, 236_000, 80_000)
    assert credited.amount_due_minor == 156_000


def test_credit_beyond_the_total_is_left_on_the_grant() -> None:
    credited = apply_credits(_invoice(), [grant("g_big", 1_000_000)], NOW)
    validate_invoice(credited)
    assert credited.credits_minor == 236_000 and credited.amount_due_minor == 0


def test_checks_refuse_credit_lines_that_do_not_hold() -> None:
    credited = apply_credits(_invoice(), [grant("g_a", 1000), grant("g_b", 1000, priority=1)], NOW)
    bad = [
        replace(credited, credit_lines=(replace(credited.credit_lines[0], amount_minor=5),)),
        replace(credited, credit_lines=(replace(credited.credit_lines[0], number=7),)),
        replace(credited, credit_lines=(credited.credit_lines[0],
                                        replace(credited.credit_lines[1], credit_grant_id="g_a"))),
        replace(credited, credit_lines=(replace(credited.credit_lines[0], amount_minor=-300_000),)),
        replace(credited, credit_lines=(replace(credited.credit_lines[0], credit_grant_id=""),)),
    ]
    for invoice in bad:
        with pytest.raises(FailedPrecondition):
            validate_invoice(invoice)


def test_the_worked_example_of_docs_credits() -> None:
    """docs/credits.md: 999.00 + 18 % GST = 1178.82; B (priority 0) then A pay 800.00; C expired; 378.82 due."""
    version = plan_version("pv", "Standard", "INR", "999", (), gst_rate="18")
    invoice = build_invoice("inv_1", billing((SegmentUsage(whole(), version, usage()),)))
    grants = [
        grant("A", 50_000, priority=1),
        grant("B", 30_000, expires=datetime(2027, 1, 1, tzinfo=UTC)),
        grant("C", 20_000, expires=datetime(2026, 11, 1, tzinfo=UTC)),
    ]
    credited = apply_credits(invoice, grants, NOW)
    validate_invoice(credited)
    assert [t.amount_minor for t in credited.tax_lines] == [8991, 8991] and credited.total_minor == 117_882
    assert [(line.credit_grant_id, line.amount_minor) for line in credited.credit_lines] == [
        ("B", -30_000), ("A", -50_000)]
    assert credited.amount_due_minor == 37_882


def test_a_refund_takes_back_only_what_is_unspent_and_reports_the_spent_rest() -> None:
    bought = grant("g1", 100_000)
    assert claw_back(bought, 30_000) == Clawback(30_000, 0)  # a partial refund: only its amount
    assert claw_back(bought, 100_000) == Clawback(100_000, 0)
    spent = grant("g1", 100_000, consumed=70_000)
    assert claw_back(spent, 20_000) == Clawback(20_000, 0)
    assert claw_back(spent, 100_000) == Clawback(30_000, 70_000)  # never below zero: the rest was spent
    # An earlier claw-back counts: a second refund takes from what is left, and no refund claims more than was
    # bought (a refund beyond what was paid is settlement's over-refund, not spent credit).
    after_first = replace(spent, clawed_back_minor=20_000)
    assert after_first.remaining_minor == 10_000
    assert claw_back(after_first, 80_000) == Clawback(10_000, 70_000)
    assert claw_back(after_first, 500_000) == Clawback(10_000, 70_000)
    assert claw_back(replace(bought, clawed_back_minor=100_000), 5_000) == Clawback(0, 0)
    # A voided grant's remainder was withdrawn already: nothing taken, only the spent part reported.
    voided = grant("g1", 100_000, consumed=70_000, status=GrantStatus.VOIDED)
    assert claw_back(voided, 20_000) == Clawback(0, 0)
    assert claw_back(voided, 100_000) == Clawback(0, 70_000)
    with pytest.raises(ValueError):
        claw_back(bought, -1)
