"""What an organisation may do: its plan's features with its own overrides applied. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from billing_runtime.errors import InvalidArgument
from services.metering.domain.plan_in_force import EntitlementValue, PlanInForce

# Invoicing's rule for feature keys (PlanTerms.entitlements), bounded.
FEATURE = re.compile(r"[a-z0-9_.-]{1,64}")


class EntitlementSource(StrEnum):
    PLAN = "plan"
    OVERRIDE = "override"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Entitlement:
    feature: str
    value: EntitlementValue
    source: EntitlementSource


def validate_feature(feature: str, field: str = "feature") -> str:
    if FEATURE.fullmatch(feature) is None:
        raise InvalidArgument(
            "must be 1 to 64 lower-case letters, digits, '_', '.' or '-', e.g. \"sso\" or \"seats\"", field=field
        )
    return feature


def entitlements(plan: PlanInForce, feature: str = "") -> list[Entitlement]:
    """The plan's features (none without a subscription) with the organisation's overrides over them, sorted by
    feature; or only ``feature``, which neither knows is answered as not granted (False, UNKNOWN)."""
    granted = {key: Entitlement(key, value, EntitlementSource.PLAN)
               for key, value in (plan.entitlements.items() if plan.found else ())}
    granted.update({key: Entitlement(key, value, EntitlementSource.OVERRIDE) for key, value in plan.overrides.items()})
    if feature:
        return [granted.get(feature) or Entitlement(feature, False, EntitlementSource.UNKNOWN)]
    return [granted[key] for key in sorted(granted)]
