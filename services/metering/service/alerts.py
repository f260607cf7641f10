"""Creating, reading, listing and deleting alert rules, and listing what they fired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from billing_runtime import paging
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.metering.domain.alert_evaluation import FiredAlert, currency_minor_units
from services.metering.domain.alerts import MAX_LIVE_RULES_PER_ORGANISATION, AlertRule, RuleRequest, define_rule
from services.metering.domain.plan_in_force import PlanDirectory
from services.metering.service.alert_ports import AlertsTransaction


async def create_rule(
    uow: AlertsTransaction,
    plans: PlanDirectory,
    request: RuleRequest,
    idempotency_key: str = "",
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[AlertRule, bool]:
    """Create a rule for an organisation invoicing knows (NOT_FOUND otherwise), in its billing currency.
    Returns (rule, created)."""
    if not request.organisation_id:
        raise InvalidArgument("is required", field="rule.organisation_id")
    # Asked before the transaction opens: no connection is held while invoicing answers.
    plan = await plans.plan_in_force(request.organisation_id, now())
    if plan is None:
        raise NotFound(f"no organisation with id {request.organisation_id!r}")
    definition = define_rule(request, currency=plan.currency, currency_minor_units=currency_minor_units(plan.currency))
    async with uow:
        await uow.alerts.lock_organisation(definition.organisation_id)
        live = await uow.alerts.count_live(definition.organisation_id)
        rule, created = await uow.alerts.add(new_id("alr"), definition, idempotency_key)
        if created and live >= MAX_LIVE_RULES_PER_ORGANISATION:
            raise FailedPrecondition(
                f"organisation {definition.organisation_id} already has {MAX_LIVE_RULES_PER_ORGANISATION} live alert "
                "rules; delete one first"
            )
    return rule, created


async def get_rule(uow: AlertsTransaction, rule_id: str) -> AlertRule:
    if not rule_id:
        raise InvalidArgument("is required", field="rule_id")
    async with uow:
        rule = await uow.alerts.get(rule_id)
    if rule is None:
        raise NotFound(f"no alert rule with id {rule_id!r}")
    return rule


async def list_rules(
    uow: AlertsTransaction, organisation_id: str, include_deleted: bool, page_size: int, page_token: str
) -> tuple[list[AlertRule], str]:
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        page = await uow.alerts.list(
            organisation_id=organisation_id, include_deleted=include_deleted, limit=size + 1, after=after
        )
    return paging.split_page(page, size)


async def delete_rule(uow: AlertsTransaction, rule_id: str) -> AlertRule:
    """Delete a rule (once; deleting again returns it unchanged). What it fired stays listed."""
    if not rule_id:
        raise InvalidArgument("is required", field="rule_id")
    async with uow:
        rule = await uow.alerts.delete(rule_id)
    if rule is None:
        raise NotFound(f"no alert rule with id {rule_id!r}")
    return rule


async def list_fired_alerts(
    uow: AlertsTransaction, organisation_id: str, rule_id: str, page_size: int, page_token: str
) -> tuple[list[FiredAlert], str]:
    """Newest first, paged."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    size, before = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        page = await uow.alerts.list_fired(organisation_id=organisation_id, rule_id=rule_id, limit=size + 1,
                                           before=before)
    return paging.split_page(page, size)
