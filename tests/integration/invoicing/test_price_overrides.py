"""Price overrides through gRPC against the real invoicing service and PostgreSQL: invoices priced with an
organisation's own prices and saying so, a change mid-period prorated like a plan change, versions kept and
listed, what is in force shown on the subscription and the plan in force, bad overrides refused naming the field
with nothing changed, and retries that make nothing new."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import grpc
from google.protobuf import json_format

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.timestamps import to_timestamp
from tests.integration.helpers import error_field, expect_rpc_error
from tests.integration.invoicing.conftest import (
    create_organisation,
    create_plan,
    invoices_of,
    run_to_completion,
    subscribe,
    terms,
)

APRIL = datetime(2026, 4, 1, tzinfo=UTC)
PLAN = dict(currency="INR", base_fee="999", charges=[
    {"metric_code": "support", "display_name": "Priority support", "charge": {"model": "CHARGE_MODEL_FLAT",
                                                                             "flat_amount": "500"}}])
AGREED = dict(base_fee="600", charges=[{"metric_code": "support", "charge": {"model": "CHARGE_MODEL_FLAT",
                                                                              "flat_amount": "200"}}])


def override_terms(**fields) -> pb.PriceOverrideTerms:
    return json_format.ParseDict(fields, pb.PriceOverrideTerms())


async def live_invoice(stub, organisation_id: str, period_key: str) -> pb.Invoice:
    (invoice,) = [i for i in await invoices_of(stub, organisation_id, period_key) if i.status != pb.INVOICE_STATUS_VOID]
    return invoice


async def list_versions(stub, organisation_id: str) -> list[pb.PriceOverride]:
    return list((await stub.ListPriceOverrides(pb.ListPriceOverridesRequest(organisation_id=organisation_id)))
                .price_overrides)


async def test_invoices_are_priced_with_the_version_in_force_and_say_so(invoicing, invoicing_stub, metering):
    stub = invoicing_stub
    plan = await create_plan(stub, terms(**PLAN))
    organisation_id = await create_organisation(stub, invoicing, since=APRIL)
    subscription = await subscribe(stub, organisation_id, plan.latest_version.id, start_date="2026-05-01")
    key = f"po-{secrets.token_hex(4)}"
    request = pb.SetPriceOverrideRequest(organisation_id=organisation_id, plan_code=plan.code,
                                         terms=override_terms(**AGREED), effective_date="2026-05-01",
                                         idempotency_key=key)
    first = await stub.SetPriceOverride(request)
    assert first.created and first.price_override.version == 1
    assert (first.price_override.terms.currency, first.price_override.terms.base_fee) == ("INR", "600")
    retried = await stub.SetPriceOverride(request)
    assert (retried.created, retried.price_override.id) == (False, first.price_override.id)

    # Refused whole, naming the field; nothing stored.
    bad = pb.SetPriceOverrideRequest(organisation_id=organisation_id, plan_code=plan.code, terms=override_terms(
        charges=[{"metric_code": "gpu_hours", "charge": {"model": "CHARGE_MODEL_FLAT", "flat_amount": "1"}}]))
    error = await expect_rpc_error(stub.SetPriceOverride(bad), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "charges[0].metric_code"
    bad_tiers = pb.SetPriceOverrideRequest(organisation_id=organisation_id, plan_code=plan.code, terms=override_terms(
        charges=[{"metric_code": "support", "charge": {"model": "CHARGE_MODEL_GRADUATED", "tiers": [
            {"up_to": "10", "unit_price": "1"}]}}]))
    error = await expect_rpc_error(stub.SetPriceOverride(bad_tiers), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "charges[0].charge.tiers[0].up_to"
    other_currency = pb.SetPriceOverrideRequest(organisation_id=organisation_id, plan_code=plan.code,
                                                terms=override_terms(currency="USD", base_fee="10"))
    error = await expect_rpc_error(stub.SetPriceOverride(other_currency), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "currency"
    assert [o.version for o in await list_versions(stub, organisation_id)] == [1]

    run = await run_to_completion(stub, "2026-05", organisation_id)
    assert (run.invoiced, run.failed) == (1, 0), run.failures
    may = await live_invoice(stub, organisation_id, "2026-05")
    assert [(line.description, line.amount_minor, line.price_override_version) for line in may.lines] == [
        ("Standard plan base fee, price agreed for this organisation (override v1)", 60000, 1),
        ("Priority support, price agreed for this organisation (override v1)", 20000, 1)]
    assert {line.price_override_id for line in may.lines} == {first.price_override.id}
    assert may.subtotal_minor == 80000 and may.total_minor == 80000 + 2 * 7200
    html = (await stub.RenderInvoice(pb.RenderInvoiceRequest(invoice_id=may.id, format=pb.INVOICE_FORMAT_HTML))
            ).content.decode()
    assert "price agreed for this organisation (override v1)" in html

    # May is invoiced: a version may not start inside it.
    inside = pb.SetPriceOverrideRequest(organisation_id=organisation_id, plan_code=plan.code,
                                        terms=override_terms(base_fee="1"), effective_date="2026-05-20")
    error = await expect_rpc_error(stub.SetPriceOverride(inside), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "effective_date"

    # From 16 June, only the base fee is agreed (300): support is the plan's 500 again.
    second = await stub.SetPriceOverride(pb.SetPriceOverrideRequest(
        organisation_id=organisation_id, plan_id=plan.id, terms=override_terms(base_fee="300"),
        effective_date="2026-06-16"))
    assert second.created and second.price_override.version == 2
    run = await run_to_completion(stub, "2026-06", organisation_id)
    assert (run.invoiced, run.failed) == (1, 0), run.failures
    june = await live_invoice(stub, organisation_id, "2026-06")
    assert [(line.description, line.amount_minor, line.price_override_version) for line in june.lines] == [
        ("Standard plan base fee (15 of 30 days), price agreed for this organisation (override v1)", 30000, 1),
        ("Priority support (Standard plan, 15 of 30 days), price agreed for this organisation (override v1)",
         20000, 1),
        ("Standard plan base fee (15 of 30 days), price agreed for this organisation (override v2)", 15000, 2),
        ("Priority support (Standard plan, 15 of 30 days)", 50000, 0)]

    in_force = await stub.GetPlanInForce(pb.GetPlanInForceRequest(
        organisation_id=organisation_id, time=to_timestamp(datetime(2026, 6, 10, tzinfo=UTC))))
    assert in_force.price_override.version == 1
    assert in_force.plan_version.terms.base_fee == "999"  # the plan's own terms; the override beside them
    shown = (await stub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=subscription.id))).subscription
    assert (shown.price_override.version, shown.price_override.terms.base_fee) == (2, "300")

    cleared = await stub.DeletePriceOverride(pb.DeletePriceOverrideRequest(
        organisation_id=organisation_id, plan_code=plan.code, effective_date="2026-07-01"))
    assert cleared.created and cleared.price_override.cleared and cleared.price_override.version == 3
    again = await stub.DeletePriceOverride(pb.DeletePriceOverrideRequest(
        organisation_id=organisation_id, plan_code=plan.code, effective_date="2026-08-01"))
    assert (again.created, again.price_override.version) == (False, 3)
    assert [(o.version, o.cleared) for o in await list_versions(stub, organisation_id)] == [
        (1, False), (2, False), (3, True)]
    shown = (await stub.GetSubscription(pb.GetSubscriptionRequest(subscription_id=subscription.id))).subscription
    assert not shown.HasField("price_override")
    run = await run_to_completion(stub, "2026-07", organisation_id)
    july = await live_invoice(stub, organisation_id, "2026-07")
    assert [(line.amount_minor, line.price_override_version) for line in july.lines] == [(99900, 0), (50000, 0)]

    # The projected invoice of the current period is priced (and labelled) with the version in force too.
    latest = await stub.SetPriceOverride(pb.SetPriceOverrideRequest(
        organisation_id=organisation_id, plan_code=plan.code, terms=override_terms(**AGREED)))
    assert latest.price_override.version == 4
    projected = (await stub.GetProjectedInvoice(pb.GetProjectedInvoiceRequest(organisation_id=organisation_id))
                 ).invoice
    agreed = [line for line in projected.lines if line.price_override_version == 4]
    assert {line.description.split(", price agreed")[0].split(" (")[0] for line in agreed} == {
        "Standard plan base fee", "Priority support"}
    assert all(line.description.endswith("price agreed for this organisation (override v4)") for line in agreed)


async def test_unknown_organisation_or_plan_and_a_reused_key(invoicing, invoicing_stub):
    stub = invoicing_stub
    plan = await create_plan(stub, terms(**PLAN))
    organisation_id = await create_organisation(stub, invoicing, since=APRIL)
    await expect_rpc_error(stub.SetPriceOverride(pb.SetPriceOverrideRequest(
        organisation_id="org_01KNOSUCHORGANISATION000", plan_code=plan.code, terms=override_terms(base_fee="1"))),
        grpc.StatusCode.NOT_FOUND)
    await expect_rpc_error(stub.SetPriceOverride(pb.SetPriceOverrideRequest(
        organisation_id=organisation_id, plan_code="no-such-plan", terms=override_terms(base_fee="1"))),
        grpc.StatusCode.NOT_FOUND)
    error = await expect_rpc_error(stub.SetPriceOverride(pb.SetPriceOverrideRequest(
        organisation_id=organisation_id, terms=override_terms(base_fee="1"))), grpc.StatusCode.INVALID_ARGUMENT)
    assert error_field(error) == "plan_id"
    key = f"po-{secrets.token_hex(4)}"
    await stub.SetPriceOverride(pb.SetPriceOverrideRequest(organisation_id=organisation_id, plan_code=plan.code,
                                                           terms=override_terms(base_fee="1"), idempotency_key=key))
    error = await expect_rpc_error(stub.SetPriceOverride(pb.SetPriceOverrideRequest(
        organisation_id=organisation_id, plan_code=plan.code, terms=override_terms(base_fee="2"),
        idempotency_key=key)), grpc.StatusCode.ABORTED)
    assert [o.terms.base_fee for o in await list_versions(stub, organisation_id)] == ["1"]
