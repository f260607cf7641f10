"""The REST shapes of dunning: where an unpaid invoice's reminders and retries stand, and the policy they follow.

A policy retries either on explicit days after the due date (``retry_days``, one per attempt) or with exponential
backoff (``base_seconds * factor**n``, capped at ``cap_seconds``); ``factor`` is decimal text, as payments keeps
it. What a policy may say (at most 20 attempts, increasing days, delays up to 120 days) is payments' rule: the
gateway checks only that the numbers fit their protobuf fields, and names the field payments refuses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from billing.payments.v1 import payments_pb2
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

DUNNING_STATES = EnumNames.of(payments_pb2.DunningState, "DUNNING_STATE_")
DunningStateName = Literal["scheduled", "retrying", "stopped", "exhausted"]

# The protobuf field widths: a larger JSON number would fail in the protobuf constructor, after validation.
Int32 = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]
Int64 = Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]


class DunningPolicy(BaseModel):
    max_attempts: int = Field(description="Retries after the due date before the invoice is uncollectible",
                              examples=[3])
    retry_days: list[int] = Field(description="Days after the due date of each attempt; empty: backoff",
                                  examples=[[1, 3, 7]])
    base_seconds: int = Field(description="Backoff: the first delay", examples=[86400])
    factor: str = Field(description="Backoff: each delay is the last times this (decimal text)", examples=["2"])
    cap_seconds: int = Field(description="Backoff: no delay is longer", examples=[1209600])

    @classmethod
    def from_pb(cls, message: payments_pb2.DunningPolicy) -> DunningPolicy:
        return cls(max_attempts=message.max_attempts, retry_days=list(message.retry_days),
                   base_seconds=message.base_seconds, factor=message.factor, cap_seconds=message.cap_seconds)


class OrganisationDunningPolicy(BaseModel):
    """The policy an organisation's invoices issued from now on follow."""

    organisation_id: str
    own: bool = Field(description="False: the organisation has no policy of its own and this is the default")
    policy: DunningPolicy

    @classmethod
    def from_pb(cls, organisation_id: str, policy: payments_pb2.DunningPolicy, own: bool) -> OrganisationDunningPolicy:
        return cls(organisation_id=organisation_id, own=own, policy=DunningPolicy.from_pb(policy))


class DunningPolicySet(Request):
    """An organisation's own policy: `retry_days` (one per attempt), or the backoff fields (absent: one day,
    doubling, at most 14 days)."""

    max_attempts: Int32 = Field(description="0 to 20", examples=[3])
    retry_days: list[Int32] = Field([], description="Increasing days after the due date, one per attempt",
                                    examples=[[1, 3, 7]])
    base_seconds: Int64 = Field(0, description="0: one day", examples=[86400])
    factor: StrictStr = Field("", description='Decimal text between 1 and 10; "": 2', examples=["2"])
    cap_seconds: Int64 = Field(0, description="0: 14 days", examples=[1209600])

    def to_pb(self) -> payments_pb2.DunningPolicy:
        return payments_pb2.DunningPolicy(max_attempts=self.max_attempts, retry_days=self.retry_days,
                                          base_seconds=self.base_seconds, factor=self.factor,
                                          cap_seconds=self.cap_seconds)


class Dunning(BaseModel):
    """Where an issued invoice's dunning stands."""

    invoice_id: str
    state: DunningStateName | None = Field(description="scheduled: not due yet; retrying: overdue, attempts "
                                                       "follow the policy; stopped: paid or voided; exhausted: "
                                                       "the last attempt passed unpaid (uncollectible)")
    attempts: int = Field(description="Attempts made so far (each sent a fresh payment link)")
    policy: DunningPolicy = Field(description="The policy it started with (later changes do not apply to it)")
    due_at: datetime | None = Field(description="The end of the due date, in the supplier's zone")
    next_at: datetime | None = Field(description="When the next step (overdue notice, attempt, giving up) is "
                                                 "due; null once stopped or exhausted")
    reason: str = Field(description="Why it stopped, or what went wrong with the last attempt")

    @classmethod
    def from_pb(cls, message: payments_pb2.Dunning) -> Dunning:
        return cls(invoice_id=message.invoice_id, state=DUNNING_STATES.name(message.state),
                   attempts=message.attempts, policy=DunningPolicy.from_pb(message.policy),
                   due_at=from_timestamp(message.due_time), next_at=from_timestamp(message.next_time),
                   reason=message.reason)
