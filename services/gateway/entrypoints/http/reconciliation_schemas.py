"""The REST shapes of reconciliation: runs comparing our payments and refunds with the provider's, and the
discrepancies they found."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from billing.payments.v1 import payments_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

RUN_STATES = EnumNames.of(payments_pb2.ReconciliationState, "RECONCILIATION_STATE_")
DISCREPANCY_KINDS = EnumNames.of(payments_pb2.DiscrepancyKind, "DISCREPANCY_KIND_")

DiscrepancyKindName = Literal["missing_ours", "missing_provider", "amount_mismatch", "currency_mismatch",
                              "status_mismatch"]


class ReconciliationRunCreate(Request):
    start_time: AwareDatetime = Field(description="RFC 3339 with a zone: payments and refunds created from then",
                                      examples=["2026-11-04T00:00:00Z"])
    end_time: AwareDatetime = Field(description="RFC 3339 with a zone, up to (not including) then; after "
                                                "start_time, at most 31 days later, not in the future",
                                    examples=["2026-11-05T00:00:00Z"])


class DiscrepancyResolve(Request):
    resolution: str = Field(description="What was done about it (at most 500 characters)",
                            examples=["Refunded the excess at the provider as rfnd_123"])


class ReconciliationRun(BaseModel):
    id: str
    state: Literal["running", "completed", "failed"] | None
    start_time: datetime | None
    end_time: datetime | None
    trigger: str = Field(description="manual (asked for through the API) or scheduled (payments' daily run)")
    payments_checked: int
    refunds_checked: int
    discrepancy_count: int = Field(description="Discrepancies found")
    error: str = Field(description="Why a failed run failed (the provider could not be read ...)")
    created_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def fields_of(cls, message: payments_pb2.ReconciliationRun) -> dict[str, Any]:
        return dict(id=message.id, state=RUN_STATES.name(message.state), start_time=from_timestamp(message.start_time),
                    end_time=from_timestamp(message.end_time), trigger=message.trigger,
                    payments_checked=message.payments_checked, refunds_checked=message.refunds_checked,
                    discrepancy_count=message.discrepancies, error=message.error,
                    created_at=from_timestamp(message.create_time), finished_at=from_timestamp(message.finish_time))

    @classmethod
    def from_pb(cls, message: payments_pb2.ReconciliationRun) -> ReconciliationRun:
        return cls(**cls.fields_of(message))


class Discrepancy(BaseModel):
    id: str
    run_id: str
    kind: DiscrepancyKindName | None = Field(description="missing_ours: the provider has it, we do not; "
                                                         "missing_provider: we have it, the provider does not")
    object_type: str = Field(description="payment or refund", examples=["payment"])
    provider_id: str = Field(examples=["pay_29QQoUBi66xm2f"])
    our_id: str = Field(description="Our id, when we have the object", examples=["pmt_01JC…"])
    detail: str = Field(examples=["amount: ours 117882, the provider's 100000 minor units"])
    ours: str = Field(description="Our (status, currency, amount_minor), as found")
    theirs: str = Field(description="The provider's (status, currency, amount_minor), as found")
    resolved: bool
    resolution: str
    created_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def from_pb(cls, message: payments_pb2.Discrepancy) -> Discrepancy:
        return cls(id=message.id, run_id=message.run_id, kind=DISCREPANCY_KINDS.name(message.kind),
                   object_type=message.object_type, provider_id=message.provider_id, our_id=message.our_id,
                   detail=message.detail, ours=message.ours, theirs=message.theirs, resolved=message.resolved,
                   resolution=message.resolution, created_at=from_timestamp(message.create_time),
                   resolved_at=from_timestamp(message.resolve_time))


class ReconciliationRunWithDiscrepancies(ReconciliationRun):
    discrepancies: list[Discrepancy] = Field(description="What this run found (resolved ones too)")

    @classmethod
    def from_reply(cls, reply: payments_pb2.RunReconciliationResponse | payments_pb2.GetReconciliationRunResponse
                   ) -> ReconciliationRunWithDiscrepancies:
        return cls(**ReconciliationRun.fields_of(reply.run),
                   discrepancies=[Discrepancy.from_pb(d) for d in reply.discrepancies])
