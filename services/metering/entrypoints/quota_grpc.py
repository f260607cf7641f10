"""CheckQuota, CheckQuotas and GetEntitlements over gRPC: protobuf in, use case, protobuf out.

CheckQuota sits in front of customers' requests (target p99 under 2 ms at 2,000 checks a second), so the
translation avoids work per call: timestamps of period boundaries are converted once and reused.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache

from google.protobuf.timestamp_pb2 import Timestamp

from billing.metering.v1 import metering_pb2
from billing_runtime.errors import Unavailable
from billing_runtime.timestamps import from_timestamp
from services.metering.domain.entitlements import EntitlementSource
from services.metering.domain.plan_in_force import Cap
from services.metering.domain.quota import QuotaReason
from services.metering.domain.usage import format_decimal
from services.metering.service.quotas import CheckQuota, QuotaAnswer, QuotaChecks

# Questions whose answers are kept for reuse (each a few hundred bytes); past this the memory starts afresh.
_MAX_ANSWERED = 10_000

REASONS = {
    QuotaReason.WITHIN_LIMIT: metering_pb2.QUOTA_REASON_WITHIN_LIMIT,
    QuotaReason.NO_QUOTA: metering_pb2.QUOTA_REASON_NO_QUOTA,
    QuotaReason.NO_SUBSCRIPTION: metering_pb2.QUOTA_REASON_NO_SUBSCRIPTION,
    QuotaReason.WITHIN_GRACE: metering_pb2.QUOTA_REASON_WITHIN_GRACE,
    QuotaReason.OVER_SOFT_CAP: metering_pb2.QUOTA_REASON_OVER_SOFT_CAP,
    QuotaReason.OVER_HARD_CAP: metering_pb2.QUOTA_REASON_OVER_HARD_CAP,
    QuotaReason.GRACE_EXPIRED: metering_pb2.QUOTA_REASON_GRACE_EXPIRED,
}
CAPS = {Cap.HARD: metering_pb2.QUOTA_CAP_HARD, Cap.SOFT: metering_pb2.QUOTA_CAP_SOFT, None: 0}
SOURCES = {
    EntitlementSource.PLAN: metering_pb2.ENTITLEMENT_SOURCE_PLAN,
    EntitlementSource.OVERRIDE: metering_pb2.ENTITLEMENT_SOURCE_OVERRIDE,
    EntitlementSource.UNKNOWN: metering_pb2.ENTITLEMENT_SOURCE_UNKNOWN,
}


@lru_cache(maxsize=4096)
def _seconds_nanos(moment: datetime) -> tuple[int, int]:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp.seconds, stamp.nanos


def _set(stamp: Timestamp, moment: datetime) -> None:
    stamp.seconds, stamp.nanos = _seconds_nanos(moment)


def _decimal_text(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def quota_status(answer: QuotaAnswer, quantity_text: str) -> metering_pb2.QuotaStatus:
    decision, plan = answer.decision, answer.plan
    status = metering_pb2.QuotaStatus(
        organisation_id=answer.organisation_id,
        metric_code=answer.metric_code,
        allowed=decision.allowed,
        reason=REASONS[decision.reason],
        message=decision.message,
        used=format_decimal(answer.used),
        limit=_decimal_text(decision.limit),
        remaining=_decimal_text(decision.remaining),
        cap=CAPS[decision.cap],
        grace_limit=_decimal_text(decision.grace_limit),
        enforced_at_ingest=plan.enforce_quotas_at_ingest and decision.cap is Cap.HARD,
        plan_code=plan.plan_code,
        plan_version=plan.plan_version,
        quantity=quantity_text or "1",
    )
    if decision.grace_end is not None:
        _set(status.grace_end_time, decision.grace_end)
    _set(status.period_start, plan.period_start)
    _set(status.reset_time, plan.period_end)
    # Usage times change with every read: converted here, not cached.
    status.usage_time.FromDatetime(answer.usage_time)
    return status


def _command(request: metering_pb2.CheckQuotaRequest) -> CheckQuota:
    at = from_timestamp(request.time, "time") if request.HasField("time") else None
    return CheckQuota(request.organisation_id, request.metric_code, request.quantity, at)


class QuotaRpcs:
    """The quota and entitlement RPCs of ``MeteringService``; ``MeteringServicer`` inherits them and
    ``serve_quotas`` hands them the use cases at start-up."""

    _quota_checks: QuotaChecks | None = None
    # Answers to questions without a time, by (organisation, metric, quantity text), reused while they still hold.
    _answered: dict[tuple[str, str, str], tuple[QuotaAnswer, metering_pb2.CheckQuotaResponse]]

    def serve_quotas(self, checks: QuotaChecks) -> None:
        self._quota_checks = checks
        self._answered = {}

    def _quotas(self) -> QuotaChecks:
        if self._quota_checks is None:
            raise Unavailable("quota checks are not wired in this process")
        return self._quota_checks

    async def CheckQuota(self, request, context):  # noqa: N802 - gRPC method names
        """Whether the organisation may use ``quantity`` more of the metric now (see metering.proto).

        A product asks the same question many times a second; while nothing it depends on has changed (the plan,
        the usage read, the first overage, the clock for grace), the answer built last time is returned as it is
        (about a third of a call's server time: the decision and the protobuf message)."""
        checks = self._quotas()
        if request.HasField("time"):
            answer = await checks.check(_command(request))
            return metering_pb2.CheckQuotaResponse(status=quota_status(answer, request.quantity))
        key = (request.organisation_id, request.metric_code, request.quantity)
        kept = self._answered.get(key)
        if kept is not None and await checks.still_holds(kept[0], checks.now()):
            return kept[1]
        answer = await checks.check(_command(request))
        response = metering_pb2.CheckQuotaResponse(status=quota_status(answer, request.quantity))
        if len(self._answered) >= _MAX_ANSWERED:
            self._answered.clear()
        self._answered[key] = (answer, response)
        return response

    async def CheckQuotas(self, request, context):  # noqa: N802
        """Up to 1,000 checks at once, in order (what ingest asks for a batch of events)."""
        answers = await self._quotas().check_many([_command(check) for check in request.checks])
        return metering_pb2.CheckQuotasResponse(
            statuses=[quota_status(answer, check.quantity) for answer, check in zip(answers, request.checks,
                                                                                   strict=True)]
        )

    async def GetEntitlements(self, request, context):  # noqa: N802
        """The organisation's features (plan values with its overrides applied), or one feature."""
        answer = await self._quotas().entitlements(request.organisation_id, request.feature)
        response = metering_pb2.GetEntitlementsResponse(
            subscription_found=answer.plan.found, plan_code=answer.plan.plan_code,
            plan_version=answer.plan.plan_version,
        )
        for entitlement in answer.entitlements:
            item = response.entitlements.add(feature=entitlement.feature, source=SOURCES[entitlement.source])
            value = entitlement.value
            if isinstance(value, bool):
                item.bool_value = value
            elif isinstance(value, Decimal):
                item.number_value = format_decimal(value)
            else:
                item.string_value = value
        return response

