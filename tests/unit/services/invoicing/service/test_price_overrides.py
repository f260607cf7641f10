"""Price overrides against in-memory repositories: versions numbered in order and kept, a clearing, retries and
repeats that make nothing, refusals naming the field with nothing stored, no version inside an invoiced period or
before the latest, each change announced once in its transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing_runtime.errors import Conflict, InvalidArgument, NotFound
from services.invoicing.adapters import messages
from services.invoicing.domain.invoice import Invoice, InvoiceStatus, Party, TaxRegime
from services.invoicing.service import catalog, organisations
from services.invoicing.service import price_overrides as overrides
from services.invoicing.service.organisations import CreateOrganisation
from tests.unit.services.invoicing.service.fakes import FakeOutbox, FakeUnitOfWork, Tables

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TERMS = {"currency": "INR", "base_fee": "999",
         "charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit", "unit_price": "0.05"}}]}
AGREED = {"base_fee": "500", "charges": [{"metric_code": "api_calls",
                                          "charge": {"model": "per_unit", "unit_price": "0.02"}}]}


@pytest.fixture
async def setup():
    tables = Tables()
    organisation, _ = await organisations.create_organisation(
        FakeUnitOfWork(tables), FakeOutbox(),
        CreateOrganisation(name="Acme", billing_email="a@acme.example", billing_currency="INR", country="IN",
                           state_code="29", timezone="Asia/Kolkata"),
    )
    await catalog.create_plan(FakeUnitOfWork(tables), code="standard", name="Standard", terms=TERMS)
    tables.outbox.clear()
    return tables, organisation.id


async def put(tables, organisation_id, terms, **fields):
    return await overrides.set_price_override(FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id,
                                              plan_code="standard", terms=terms, now=NOW, **fields)


async def clear(tables, organisation_id, **fields):
    return await overrides.clear_price_override(FakeUnitOfWork(tables), FakeOutbox(),
                                                organisation_id=organisation_id, plan_code="standard", now=NOW,
                                                **fields)


def changes(tables):
    return [message.change for subject, _, message in tables.outbox if subject == messages.SUBSCRIPTION_UPDATED]


async def listed(tables, organisation_id):
    return await overrides.list_price_overrides(FakeUnitOfWork(tables), organisation_id)


async def test_versions_are_numbered_kept_and_a_clearing_is_one(setup):
    tables, organisation_id = setup
    first, created = await put(tables, organisation_id, AGREED, effective_date="2026-11-01", idempotency_key="k1")
    assert created and first.version == 1 and first.terms.base_fee == Decimal(500)
    assert first.effective_from == datetime(2026, 10, 31, 18, 30, tzinfo=UTC)  # midnight in Kolkata
    assert (await put(tables, organisation_id, AGREED, effective_date="2026-11-01", idempotency_key="k1")) == (
        first, False)
    assert (await put(tables, organisation_id, AGREED, effective_date="2026-11-01")) == (first, False)  # a repeat
    second, created = await put(tables, organisation_id, {"base_fee": "450"})  # today, in Kolkata
    assert created and second.version == 2 and second.effective_from == datetime(2026, 11, 19, 18, 30, tzinfo=UTC)
    cleared, created = await clear(tables, organisation_id, effective_date="2026-12-01")
    assert created and cleared is not None and cleared.version == 3 and cleared.terms.cleared
    assert (await clear(tables, organisation_id, effective_date="2026-12-05")) == (cleared, False)
    assert [(o.version, o.terms.cleared) for o in await listed(tables, organisation_id)] == [
        (1, False), (2, False), (3, True)]
    assert changes(tables) == ["price_override"] * 3


async def test_a_key_reused_for_another_request_is_a_conflict(setup):
    tables, organisation_id = setup
    await put(tables, organisation_id, AGREED, idempotency_key="k1")
    with pytest.raises(Conflict) as refused:
        await put(tables, organisation_id, {"base_fee": "1"}, idempotency_key="k1")
    assert refused.value.field == "idempotency_key"


@pytest.mark.parametrize(("terms", "field"), [
    ({"charges": [{"metric_code": "gpu_hours", "charge": {"model": "flat", "flat_amount": "1"}}]},
     "charges[0].metric_code"),
    ({"charges": [{"metric_code": "api_calls", "charge": {"model": "per_unit"}}]}, "charges[0].charge.unit_price"),
    ({"currency": "USD", "base_fee": "1"}, "currency"),
    ({}, "charges"),
])
async def test_a_bad_override_is_refused_naming_the_field_and_nothing_changes(setup, terms, field):
    tables, organisation_id = setup
    with pytest.raises(InvalidArgument) as refused:
        await put(tables, organisation_id, terms)
    assert refused.value.field == field
    assert await listed(tables, organisation_id) == [] and changes(tables) == []


async def test_no_version_inside_an_invoiced_period_nor_before_the_latest(setup):
    tables, organisation_id = setup
    tables.invoices["inv_1"] = Invoice(
        id="inv_1", organisation_id=organisation_id, status=InvoiceStatus.ISSUED, currency="INR",
        period_start=datetime(2026, 9, 30, 18, 30, tzinfo=UTC), period_end=datetime(2026, 10, 31, 18, 30, tzinfo=UTC),
        period_key="2026-10", lines=(), tax_lines=(), subtotal_minor=0, tax_minor=0, total_minor=0,
        tax_regime=TaxRegime.INTRA_STATE, place_of_supply="29", supplier=Party("Supplier"), customer=Party("Acme"))
    with pytest.raises(InvalidArgument) as refused:
        await put(tables, organisation_id, AGREED, effective_date="2026-10-15")
    assert refused.value.field == "effective_date"
    tables.invoices["inv_1"] = replace(tables.invoices["inv_1"], status=InvoiceStatus.VOID)
    await put(tables, organisation_id, AGREED, effective_date="2026-11-10")
    with pytest.raises(InvalidArgument) as refused:
        await put(tables, organisation_id, {"base_fee": "1"}, effective_date="2026-11-05")
    assert refused.value.field == "effective_date"
    with pytest.raises(InvalidArgument) as refused:
        await put(tables, organisation_id, {"base_fee": "1"}, effective_date="5 Nov")
    assert refused.value.field == "effective_date"
    assert [o.version for o in await listed(tables, organisation_id)] == [1]


async def test_unknown_organisation_or_plan(setup):
    tables, organisation_id = setup
    with pytest.raises(NotFound):
        await put(tables, "org_missing", AGREED)
    with pytest.raises(NotFound):
        await overrides.set_price_override(FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id,
                                           plan_code="enterprise", terms=AGREED)
    with pytest.raises(InvalidArgument) as refused:
        await overrides.set_price_override(FakeUnitOfWork(tables), FakeOutbox(), organisation_id=organisation_id,
                                           terms=AGREED)
    assert refused.value.field == "plan_id"
    assert await clear(tables, organisation_id) == (None, False)
