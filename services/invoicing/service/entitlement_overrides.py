"""Entitlement overrides: features granted to one organisation over its plan's (or that its plan lacks).

Each change is announced (``subscription.updated``, change "entitlement_override") in its transaction, so that
metering's cached answers are refreshed; setting what is already set, or removing what is not there, changes
nothing and announces nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing_runtime.errors import FailedPrecondition
from services.invoicing.domain.entitlements import (
    MAX_ENTITLEMENTS,
    EntitlementValue,
    same_value,
    validate_feature,
    validate_value,
)
from services.invoicing.service.organisations import existing_organisation
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction
from services.invoicing.service.subscriptions import Change, announce_update

Overrides = dict[str, EntitlementValue]


async def set_entitlement_override(
    uow: InvoicingTransaction, outbox: EventOutbox, *, organisation_id: str, feature: str, value: Mapping[str, Any]
) -> Overrides:
    """Grant ``feature`` (``value`` in the tagged form of ``domain/entitlements.py``); the overrides after it.

    At most as many overrides per organisation as a plan has entitlements (100): past that, FailedPrecondition."""
    feature = validate_feature(feature, "feature")
    checked = validate_value(value, "value")
    async with uow:
        # Locked: two changes to one organisation's overrides go one after the other (the count holds).
        await existing_organisation(uow, organisation_id, lock=True)
        overrides = await uow.entitlement_overrides.of(organisation_id)
        if feature in overrides and same_value(overrides[feature], checked):
            return overrides
        if feature not in overrides and len(overrides) >= MAX_ENTITLEMENTS:
            raise FailedPrecondition(
                f"organisation {organisation_id} has {MAX_ENTITLEMENTS} entitlement overrides, the most it may "
                "have; remove one first"
            )
        await uow.entitlement_overrides.put(organisation_id, feature, checked)
        await announce_update(uow, outbox, organisation_id, Change.ENTITLEMENT_OVERRIDE)
    return dict(sorted({**overrides, feature: checked}.items()))


async def delete_entitlement_override(
    uow: InvoicingTransaction, outbox: EventOutbox, *, organisation_id: str, feature: str
) -> Overrides:
    """Remove an override (the plan's value applies again); the overrides after it."""
    feature = validate_feature(feature, "feature")
    async with uow:
        await existing_organisation(uow, organisation_id, lock=True)
        overrides = await uow.entitlement_overrides.of(organisation_id)
        if feature not in overrides:
            return overrides
        await uow.entitlement_overrides.remove(organisation_id, feature)
        await announce_update(uow, outbox, organisation_id, Change.ENTITLEMENT_OVERRIDE)
    return {key: value for key, value in overrides.items() if key != feature}


async def list_entitlement_overrides(uow: InvoicingTransaction, organisation_id: str) -> Overrides:
    async with uow:
        await existing_organisation(uow, organisation_id)
        return await uow.entitlement_overrides.of(organisation_id)
