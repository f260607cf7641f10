"""InvoicingService over gRPC: protobuf in, use case, protobuf out. Nothing else."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing.invoicing.v1 import invoicing_pb2_grpc
from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument
from billing_runtime.service import Runtime
from billing_runtime.timestamps import from_timestamp, to_timestamp
from services.invoicing.adapters import catalog_messages as cm
from services.invoicing.adapters import coupon_messages as com
from services.invoicing.adapters import credit_messages as crm
from services.invoicing.adapters import credit_note_messages as cnm
from services.invoicing.adapters import einvoice_messages as em
from services.invoicing.adapters import price_override_messages as pom
from services.invoicing.adapters import settlement_messages as sm
from services.invoicing.adapters.messages import (
    forecast_to_pb,
    invoice_to_pb,
    organisation_to_pb,
    plan_in_force_to_pb,
)
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork
from services.invoicing.domain.charge_rules import validate_charge
from services.invoicing.domain.coupon import validate_discount
from services.invoicing.domain.discounts import discount_minor
from services.invoicing.domain.einvoice_checks import cancel_reason
from services.invoicing.domain.invoice import InvoiceStatus
from services.invoicing.domain.money import parse_decimal
from services.invoicing.domain.pricing import quote_charge
from services.invoicing.service import (
    catalog,
    coupons,
    credits,
    entitlement_overrides,
    exchange_rates,
    invoice_runs,
    invoices,
    invoicing_horizon,
    organisations,
    plan_in_force,
    price_overrides,
    settlements,
    subscriptions,
)
from services.invoicing.service.credit_notes import CreateCreditNote, CreditNotes, RequestedLine
from services.invoicing.service.einvoicing import EinvoiceRegistrar, registration_for_pdf
from services.invoicing.service.invoice_rendering import InvoiceRendering
from services.invoicing.service.invoice_runs import InvoiceRuns
from services.invoicing.service.period_close import PeriodClose

# Every InvoiceStatus the contract names, to the domain's: a status added to one and not the other fails here, at
# import, rather than as an odd filter at run time.
_STATUS_FILTER = {pb.INVOICE_STATUS_UNSPECIFIED: ""} | {
    pb.InvoiceStatus.Value(f"INVOICE_STATUS_{status.value.upper()}"): status.value for status in InvoiceStatus
}
assert len(_STATUS_FILTER) == len(pb.InvoiceStatus.keys()), "InvoiceStatus differs between contract and domain"
_REVIEW_STATES = {pb.REVIEW_ITEM_STATE_UNSPECIFIED, pb.REVIEW_ITEM_STATE_OPEN, pb.REVIEW_ITEM_STATE_RESOLVED}


class InvoicingServicer(invoicing_pb2_grpc.InvoicingServiceServicer):
    def __init__(
        self,
        runtime: Runtime,
        uow: Callable[[], InvoicingUnitOfWork],
        close: PeriodClose,
        runs: InvoiceRuns,
        rendering: InvoiceRendering,
        credit_notes: CreditNotes,
        einvoicing: EinvoiceRegistrar | None = None,
    ) -> None:
        self._einvoicing = einvoicing
        self._runtime = runtime
        self._uow = uow
        self._close = close
        self._runs = runs
        self._rendering = rendering
        self._credit_notes = credit_notes

    # Organisations -----------------------------------------------------------------------------------------

    async def CreateOrganisation(self, request, context):  # noqa: N802 - gRPC method names
        organisation, created = await organisations.create_organisation(
            self._uow(),
            self._runtime.outbox,
            organisations.CreateOrganisation(
                name=request.name,
                billing_email=request.billing_email,
                billing_currency=request.billing_currency,
                country=request.country,
                state_code=request.state_code,
                gstin=request.gstin,
                timezone=request.timezone,
                idempotency_key=request.idempotency_key,
                billing_address=request.billing_address,
            ),
        )
        return pb.CreateOrganisationResponse(organisation=organisation_to_pb(organisation), created=created)

    async def GetOrganisation(self, request, context):  # noqa: N802
        organisation = await organisations.get_organisation(self._uow(), request.organisation_id)
        return pb.GetOrganisationResponse(organisation=organisation_to_pb(organisation))

    async def ListOrganisations(self, request, context):  # noqa: N802
        page, next_token = await organisations.list_organisations(
            self._uow(), request.page_size, request.page_token
        )
        return pb.ListOrganisationsResponse(
            organisations=[organisation_to_pb(o) for o in page], next_page_token=next_token
        )

    # Catalog -----------------------------------------------------------------------------------------------

    async def CreatePlan(self, request, context):  # noqa: N802
        plan, created = await catalog.create_plan(
            self._uow(),
            code=request.code,
            name=request.name,
            terms=cm.terms_from_pb(request.terms),
            idempotency_key=request.idempotency_key,
        )
        return pb.CreatePlanResponse(plan=cm.plan_to_pb(plan), created=created)

    async def CreatePlanVersion(self, request, context):  # noqa: N802
        version, created = await catalog.create_plan_version(
            self._uow(),
            plan_id=request.plan_id,
            terms=cm.terms_from_pb(request.terms),
            name=request.name,
            idempotency_key=request.idempotency_key,
        )
        return pb.CreatePlanVersionResponse(plan_version=cm.plan_version_to_pb(version), created=created)

    async def GetPlan(self, request, context):  # noqa: N802
        plan = await catalog.get_plan(self._uow(), plan_id=request.plan_id, code=request.code)
        return pb.GetPlanResponse(plan=cm.plan_to_pb(plan))

    async def ListPlans(self, request, context):  # noqa: N802
        page, next_token = await catalog.list_plans(self._uow(), request.page_size, request.page_token)
        return pb.ListPlansResponse(plans=[cm.plan_to_pb(p) for p in page], next_page_token=next_token)

    async def GetPlanVersion(self, request, context):  # noqa: N802
        version = await catalog.get_plan_version(self._uow(), request.plan_version_id)
        return pb.GetPlanVersionResponse(plan_version=cm.plan_version_to_pb(version))

    async def ListPlanVersions(self, request, context):  # noqa: N802
        versions = await catalog.list_plan_versions(self._uow(), request.plan_id)
        return pb.ListPlanVersionsResponse(plan_versions=[cm.plan_version_to_pb(v) for v in versions])

    # Subscriptions -----------------------------------------------------------------------------------------

    async def CreateSubscription(self, request, context):  # noqa: N802
        subscription, created = await subscriptions.create_subscription(
            self._uow(),
            self._runtime.outbox,
            organisation_id=request.organisation_id,
            plan_version_id=request.plan_version_id,
            plan_code=request.plan_code,
            start_date=request.start_date,
            billing_anchor_day=request.billing_anchor_day,
            idempotency_key=request.idempotency_key,
        )
        return pb.CreateSubscriptionResponse(subscription=cm.subscription_to_pb(subscription), created=created)

    async def GetSubscription(self, request, context):  # noqa: N802
        subscription = await subscriptions.get_subscription(self._uow(), request.subscription_id)
        message = cm.subscription_to_pb(subscription)
        override = await price_overrides.override_in_force(self._uow(), subscription)
        if override is not None:
            message.price_override.CopyFrom(pom.price_override_to_pb(override))
        return pb.GetSubscriptionResponse(subscription=message)

    async def ListSubscriptions(self, request, context):  # noqa: N802
        page, next_token = await subscriptions.list_subscriptions(
            self._uow(), request.organisation_id, request.page_size, request.page_token
        )
        return pb.ListSubscriptionsResponse(
            subscriptions=[cm.subscription_to_pb(s) for s in page], next_page_token=next_token
        )

    async def ChangeSubscriptionPlan(self, request, context):  # noqa: N802
        subscription, changed = await subscriptions.change_plan(
            self._uow(),
            self._runtime.outbox,
            subscription_id=request.subscription_id,
            plan_version_id=request.plan_version_id,
            plan_code=request.plan_code,
            effective_date=request.effective_date,
        )
        return pb.ChangeSubscriptionPlanResponse(subscription=cm.subscription_to_pb(subscription), changed=changed)

    async def CancelSubscription(self, request, context):  # noqa: N802
        subscription = await subscriptions.cancel_subscription(
            self._uow(),
            self._runtime.outbox,
            subscription_id=request.subscription_id,
            at_period_end=request.at_period_end,
        )
        return pb.CancelSubscriptionResponse(subscription=cm.subscription_to_pb(subscription))

    # Plan in force and entitlement overrides --------------------------------------------------------------

    async def GetPlanInForce(self, request, context):  # noqa: N802
        at = from_timestamp(request.time, "time") if request.HasField("time") else None
        answer = await plan_in_force.get_plan_in_force(self._uow(), request.organisation_id, at)
        return plan_in_force_to_pb(answer)

    async def GetInvoicingHorizon(self, request, context):  # noqa: N802
        response = pb.GetInvoicingHorizonResponse()
        horizon = await invoicing_horizon.invoicing_horizon(self._uow())
        if horizon is not None:
            response.open_from.CopyFrom(to_timestamp(horizon))
        return response

    async def SetEntitlementOverride(self, request, context):  # noqa: N802
        overrides = await entitlement_overrides.set_entitlement_override(
            self._uow(),
            self._runtime.outbox,
            organisation_id=request.organisation_id,
            feature=request.feature,
            value=cm.entitlement_value_from_pb(request.value),
        )
        response = pb.SetEntitlementOverrideResponse()
        cm.entitlements_to_pb(response.entitlement_overrides, overrides)
        return response

    async def DeleteEntitlementOverride(self, request, context):  # noqa: N802
        overrides = await entitlement_overrides.delete_entitlement_override(
            self._uow(), self._runtime.outbox, organisation_id=request.organisation_id, feature=request.feature
        )
        response = pb.DeleteEntitlementOverrideResponse()
        cm.entitlements_to_pb(response.entitlement_overrides, overrides)
        return response

    async def ListEntitlementOverrides(self, request, context):  # noqa: N802
        overrides = await entitlement_overrides.list_entitlement_overrides(self._uow(), request.organisation_id)
        response = pb.ListEntitlementOverridesResponse()
        cm.entitlements_to_pb(response.entitlement_overrides, overrides)
        return response

    # Price overrides ----------------------------------------------------------------------------------------

    async def SetPriceOverride(self, request, context):  # noqa: N802
        override, created = await price_overrides.set_price_override(
            self._uow(),
            self._runtime.outbox,
            organisation_id=request.organisation_id,
            plan_id=request.plan_id,
            plan_code=request.plan_code,
            terms=pom.override_terms_from_pb(request.terms),
            effective_date=request.effective_date,
            idempotency_key=request.idempotency_key,
        )
        return pb.SetPriceOverrideResponse(price_override=pom.price_override_to_pb(override), created=created)

    async def ListPriceOverrides(self, request, context):  # noqa: N802
        found = await price_overrides.list_price_overrides(
            self._uow(), request.organisation_id, plan_id=request.plan_id, plan_code=request.plan_code
        )
        return pb.ListPriceOverridesResponse(price_overrides=[pom.price_override_to_pb(o) for o in found])

    async def DeletePriceOverride(self, request, context):  # noqa: N802
        override, created = await price_overrides.clear_price_override(
            self._uow(),
            self._runtime.outbox,
            organisation_id=request.organisation_id,
            plan_id=request.plan_id,
            plan_code=request.plan_code,
            effective_date=request.effective_date,
            idempotency_key=request.idempotency_key,
        )
        response = pb.DeletePriceOverrideResponse(created=created)
        if override is not None:
            response.price_override.CopyFrom(pom.price_override_to_pb(override))
        return response

    # Exchange rates and quotes -----------------------------------------------------------------------------

    async def CreateExchangeRate(self, request, context):  # noqa: N802
        row, created = await exchange_rates.create_exchange_rate(
            self._uow(),
            base_currency=request.base_currency,
            quote_currency=request.quote_currency,
            rate=request.rate,
            source=request.source,
            effective_at=(from_timestamp(request.effective_time, "effective_time")
                          if request.HasField("effective_time") else None),
        )
        return pb.CreateExchangeRateResponse(exchange_rate=cm.exchange_rate_row_to_pb(row), created=created)

    async def ListExchangeRates(self, request, context):  # noqa: N802
        rows = await exchange_rates.list_exchange_rates(
            self._uow(), base_currency=request.base_currency, quote_currency=request.quote_currency
        )
        return pb.ListExchangeRatesResponse(exchange_rates=[cm.exchange_rate_row_to_pb(row) for row in rows])

    async def QuotePrice(self, request, context):  # noqa: N802
        if not request.HasField("charge"):
            raise InvalidArgument("is required", field="charge")
        charge = validate_charge(cm.charge_from_pb(request.charge), field="charge")
        quantity = parse_decimal(request.quantity or "0", "quantity")
        amounts = [parse_decimal(a, f"event_amounts[{i}]") for i, a in enumerate(request.event_amounts)]
        quote = quote_charge(charge, quantity, amounts, request.currency)
        response = cm.quote_to_pb(quote)
        if request.percent_off or request.amount_off:
            # The quote's currency is the amount's: a coupon's amount applies only in its own currency.
            discount = validate_discount(request.percent_off, request.amount_off,
                                         request.currency if request.amount_off else None)
            response.discount_minor = discount_minor(discount, quote.total_minor, quote.currency)
        response.discounted_total_minor = quote.total_minor - response.discount_minor
        return response

    # Coupons -----------------------------------------------------------------------------------------------

    async def CreateCoupon(self, request, context):  # noqa: N802
        coupon, created = await coupons.create_coupon(
            self._uow(),
            code=request.code,
            name=request.name,
            percent_off=request.percent_off,
            amount_off=request.amount_off,
            currency=request.currency,
            duration=com.duration_from_pb(request.duration),
            duration_periods=request.duration_periods,
            plan_codes=list(request.plan_codes),
            max_redemptions=request.max_redemptions,
            expires_at=from_timestamp(request.expire_time, "expire_time") if request.HasField("expire_time") else None,
            idempotency_key=request.idempotency_key,
        )
        return pb.CreateCouponResponse(coupon=com.coupon_to_pb(coupon), created=created)

    async def GetCoupon(self, request, context):  # noqa: N802
        coupon = await coupons.get_coupon(self._uow(), coupon_id=request.coupon_id, code=request.code)
        return pb.GetCouponResponse(coupon=com.coupon_to_pb(coupon))

    async def ListCoupons(self, request, context):  # noqa: N802
        page, next_token = await coupons.list_coupons(self._uow(), request.page_size, request.page_token)
        return pb.ListCouponsResponse(coupons=[com.coupon_to_pb(c) for c in page], next_page_token=next_token)

    async def ArchiveCoupon(self, request, context):  # noqa: N802
        coupon = await coupons.archive_coupon(self._uow(), request.coupon_id)
        return pb.ArchiveCouponResponse(coupon=com.coupon_to_pb(coupon))

    async def ApplyCoupon(self, request, context):  # noqa: N802
        redemption, created = await coupons.apply_coupon(
            self._uow(),
            organisation_id=request.organisation_id,
            coupon_code=request.coupon_code,
            start_period_key=request.start_period_key,
            idempotency_key=request.idempotency_key,
        )
        return pb.ApplyCouponResponse(coupon_redemption=com.redemption_to_pb(redemption), created=created)

    async def RemoveCoupon(self, request, context):  # noqa: N802
        redemption = await coupons.remove_coupon(
            self._uow(), organisation_id=request.organisation_id, redemption_id=request.coupon_redemption_id
        )
        return pb.RemoveCouponResponse(coupon_redemption=com.redemption_to_pb(redemption))

    async def ListOrganisationCoupons(self, request, context):  # noqa: N802
        found = await coupons.list_organisation_coupons(self._uow(), request.organisation_id)
        return pb.ListOrganisationCouponsResponse(coupon_redemptions=[com.redemption_to_pb(r) for r in found])

    # Prepaid credit ----------------------------------------------------------------------------------------

    async def GrantCredit(self, request, context):  # noqa: N802
        grant, created = await credits.grant_credit(
            self._uow(),
            organisation_id=request.organisation_id,
            amount_minor=request.amount_minor,
            currency=request.currency,
            priority=request.priority,
            expires_at=from_timestamp(request.expire_time, "expire_time") if request.HasField("expire_time") else None,
            source=crm.source_from_pb(request.source),
            source_id=request.source_id,
            description=request.description,
            idempotency_key=request.idempotency_key,
        )
        return pb.GrantCreditResponse(grant=crm.grant_to_pb(grant, datetime.now(UTC)), created=created)

    async def TopUpCredit(self, request, context):  # noqa: N802
        top_up = await credits.top_up_credit(
            self._uow(),
            self._close,
            organisation_id=request.organisation_id,
            amount_minor=request.amount_minor,
            currency=request.currency,
            priority=request.priority,
            expires_at=from_timestamp(request.expire_time, "expire_time") if request.HasField("expire_time") else None,
            idempotency_key=request.idempotency_key,
        )
        return pb.TopUpCreditResponse(
            grant=crm.grant_to_pb(top_up.grant, datetime.now(UTC), top_up.invoice.id),
            invoice=invoice_to_pb(top_up.invoice),
            created=top_up.created,
        )

    async def VoidCreditGrant(self, request, context):  # noqa: N802
        grant = await credits.void_grant(
            self._uow(), organisation_id=request.organisation_id, grant_id=request.grant_id, reason=request.reason
        )
        return pb.VoidCreditGrantResponse(grant=crm.grant_to_pb(grant, datetime.now(UTC)))

    async def GetCreditBalance(self, request, context):  # noqa: N802
        statement = await credits.credit_statement(self._uow(), organisation_id=request.organisation_id)
        return crm.statement_to_pb(statement)

    # Invoice runs ------------------------------------------------------------------------------------------

    async def StartInvoiceRun(self, request, context):  # noqa: N802
        run, created = await self._runs.start(
            period_key=request.period_key,
            organisation_id=request.organisation_id,
            idempotency_key=request.idempotency_key,
        )
        return pb.StartInvoiceRunResponse(invoice_run=cm.invoice_run_to_pb(run), created=created)

    async def GetInvoiceRun(self, request, context):  # noqa: N802
        run = await invoice_runs.get_run(self._uow(), request.invoice_run_id)
        return pb.GetInvoiceRunResponse(invoice_run=cm.invoice_run_to_pb(run))

    async def ListInvoiceRuns(self, request, context):  # noqa: N802
        page, next_token = await invoice_runs.list_runs(self._uow(), request.page_size, request.page_token)
        return pb.ListInvoiceRunsResponse(
            invoice_runs=[cm.invoice_run_to_pb(run) for run in page], next_page_token=next_token
        )

    # Invoices ----------------------------------------------------------------------------------------------

    async def ListInvoices(self, request, context):  # noqa: N802
        if request.status not in _STATUS_FILTER:
            raise InvalidArgument(f"{request.status} is not an InvoiceStatus", field="status")
        page, next_token = await invoices.list_invoices(
            self._uow(),
            organisation_id=request.organisation_id,
            status=_STATUS_FILTER[request.status],
            period_key=request.period_key,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListInvoicesResponse(
            invoices=[invoice_to_pb(i, with_lines=False) for i in page], next_page_token=next_token
        )

    async def GetInvoice(self, request, context):  # noqa: N802
        invoice = await invoices.get_invoice(self._uow(), request.invoice_id)
        return pb.GetInvoiceResponse(invoice=invoice_to_pb(invoice))

    async def VoidInvoice(self, request, context):  # noqa: N802
        if self._einvoicing is not None and request.invoice_id:
            # An e-invoiced invoice's IRN is cancelled first (a network call, outside any transaction), and only
            # if the invoice could be voided at all: a void refused afterwards would leave it issued without one.
            cancel_reason(request.irn_cancel_reason or "4")
            await invoices.check_voidable(self._uow(), request.invoice_id, request.reason)
            await self._einvoicing.cancel_for_void(request.invoice_id, request.irn_cancel_reason, request.reason)
        invoice = await invoices.void_invoice(
            self._uow(), self._runtime.outbox, invoice_id=request.invoice_id, reason=request.reason
        )
        return pb.VoidInvoiceResponse(invoice=invoice_to_pb(invoice))

    async def ReissueInvoice(self, request, context):  # noqa: N802
        if not request.invoice_id:
            raise InvalidArgument("is required", field="invoice_id")
        invoice, created = await self._close.reissue(request.invoice_id)
        return pb.ReissueInvoiceResponse(invoice=invoice_to_pb(invoice), created=created)

    async def RenderInvoice(self, request, context):  # noqa: N802
        invoice = await invoices.get_invoice(self._uow(), request.invoice_id)
        if request.format in (pb.INVOICE_FORMAT_PDF, pb.INVOICE_FORMAT_UNSPECIFIED):
            # The PDF of an e-invoiced invoice is final only with its IRN: Unavailable until it is registered.
            registration = await registration_for_pdf(self._uow(), invoice)
            content = await self._rendering.pdf(invoice, registration)
            content_type, extension = "application/pdf", "pdf"
        elif request.format == pb.INVOICE_FORMAT_HTML:
            async with self._uow() as uow:
                registration = await uow.einvoices.get(invoice.id)
            content = self._rendering.html(invoice, registration).encode()
            content_type, extension = "text/html; charset=utf-8", "html"
        else:
            raise InvalidArgument(f"{request.format} is not an InvoiceFormat", field="format")
        return pb.RenderInvoiceResponse(
            content_type=content_type, content=content, filename=self._rendering.filename(invoice, extension)
        )

    # Credit notes ------------------------------------------------------------------------------------------

    async def CreateCreditNote(self, request, context):  # noqa: N802
        note, created = await self._credit_notes.create(
            CreateCreditNote(
                invoice_id=request.invoice_id,
                reason_code=cnm.reason_from_pb(request.reason_code),
                reason=request.reason,
                outcome=cnm.outcome_from_pb(request.outcome),
                whole=request.whole,
                lines=tuple(RequestedLine(x.line_number, x.amount_minor, x.quantity) for x in request.lines),
                idempotency_key=request.idempotency_key,
            )
        )
        return pb.CreateCreditNoteResponse(credit_note=cnm.credit_note_to_pb(note), created=created)

    async def GetCreditNote(self, request, context):  # noqa: N802
        note = await self._credit_notes.get(request.credit_note_id)
        return pb.GetCreditNoteResponse(credit_note=cnm.credit_note_to_pb(note))

    async def ListCreditNotes(self, request, context):  # noqa: N802
        page, next_token = await self._credit_notes.list(
            invoice_id=request.invoice_id, organisation_id=request.organisation_id, page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListCreditNotesResponse(
            credit_notes=[cnm.credit_note_to_pb(n) for n in page], next_page_token=next_token
        )

    async def RenderCreditNote(self, request, context):  # noqa: N802
        note, invoice = await self._credit_notes.get_with_invoice(request.credit_note_id)
        if request.format in (pb.INVOICE_FORMAT_PDF, pb.INVOICE_FORMAT_UNSPECIFIED):
            registration = await registration_for_pdf(self._uow(), note)
            content = await self._rendering.credit_note_pdf(note, invoice, registration)
            content_type, extension = "application/pdf", "pdf"
        elif request.format == pb.INVOICE_FORMAT_HTML:
            async with self._uow() as uow:
                registration = await uow.einvoices.get(note.id)
            content = self._rendering.credit_note_html(note, invoice, registration).encode()
            content_type, extension = "text/html; charset=utf-8", "html"
        else:
            raise InvalidArgument(f"{request.format} is not an InvoiceFormat", field="format")
        return pb.RenderCreditNoteResponse(
            content_type=content_type, content=content, filename=self._rendering.filename(note, extension)
        )

    async def GetProjectedInvoice(self, request, context):  # noqa: N802
        if not request.organisation_id:
            raise InvalidArgument("is required", field="organisation_id")
        change = request.plan_change if request.HasField("plan_change") else None
        projected = await self._close.projected(
            request.organisation_id, with_forecast=request.include_forecast,
            plan_change=None if change is None else {
                "subscription_id": change.subscription_id, "plan_version_id": change.plan_version_id,
                "plan_code": change.plan_code, "effective_date": change.effective_date})
        response = pb.GetProjectedInvoiceResponse(invoice=invoice_to_pb(projected.invoice, projected=True))
        if projected.forecast is not None:
            response.forecast.CopyFrom(forecast_to_pb(projected.forecast))
        return response

    # Settlement --------------------------------------------------------------------------------------------

    async def ListInvoiceStatusChanges(self, request, context):  # noqa: N802
        changes = await settlements.list_status_changes(self._runtime.uow(), request.invoice_id)
        return pb.ListInvoiceStatusChangesResponse(status_changes=[sm.status_change_to_pb(c) for c in changes])

    async def ListInvoiceSettlements(self, request, context):  # noqa: N802
        recorded = await settlements.list_settlements(self._runtime.uow(), request.invoice_id)
        return pb.ListInvoiceSettlementsResponse(settlements=[sm.settlement_to_pb(r) for r in recorded])

    async def ListReviewItems(self, request, context):  # noqa: N802
        if request.state not in _REVIEW_STATES:
            raise InvalidArgument(f"{request.state} is not a ReviewItemState", field="state")
        page, next_token = await settlements.list_review_items(
            self._runtime.uow(),
            open_only=request.state == pb.REVIEW_ITEM_STATE_OPEN,
            resolved_only=request.state == pb.REVIEW_ITEM_STATE_RESOLVED,
            organisation_id=request.organisation_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListReviewItemsResponse(
            review_items=[sm.review_item_to_pb(item) for item in page], next_page_token=next_token
        )

    async def ListEinvoiceRegistrations(self, request, context):  # noqa: N802
        status = em.status_from_pb(request.status)
        size, after = paging.page_size(request.page_size), paging.page_after(request.page_token)
        if self._einvoicing is None:
            return pb.ListEinvoiceRegistrationsResponse()
        for name in ("organisation_id", "invoice_id"):
            if len(getattr(request, name)) > 64:
                raise InvalidArgument("must be at most 64 characters", field=name)
        found = await self._einvoicing.list(
            status=status,
            limit=size + 1,
            after=after,
            organisation_id=request.organisation_id,
            invoice_id=request.invoice_id,
        )
        page = found[:size]
        return pb.ListEinvoiceRegistrationsResponse(
            registrations=[em.registration_to_pb(r.registration, r.organisation_id) for r in page],
            next_page_token=page[-1].registration.document_id if len(found) > size else "",
        )

    async def RetryEinvoiceRegistration(self, request, context):  # noqa: N802
        if not request.document_id:
            raise InvalidArgument("is required", field="document_id")
        if self._einvoicing is None:
            raise FailedPrecondition("e-invoicing is not enabled for this supplier (INVOICING_EINVOICE_ENABLED)")
        registration = await self._einvoicing.retry(request.document_id)
        # Whose it is, as the list says it (every document of an invoice bills the invoice's organisation).
        listed = await self._einvoicing.list(status="", limit=1, after=None, invoice_id=registration.invoice_id)
        organisation_id = listed[0].organisation_id if listed else ""
        return pb.RetryEinvoiceRegistrationResponse(
            registration=em.registration_to_pb(registration, organisation_id)
        )

    async def ResolveReviewItem(self, request, context):  # noqa: N802
        item = await settlements.resolve_review_item(
            self._runtime.uow(), request.review_item_id, request.resolution, request.resolved_by
        )
        return pb.ResolveReviewItemResponse(review_item=sm.review_item_to_pb(item))
