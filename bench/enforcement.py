"""Ingest throughput with quota enforcement on, beside off, on the same stack in the same run.

Two organisations send the same pre-built batches over ``StreamEvents``, in alternating rounds (so a burst of
load from elsewhere does not land on one side only); best round of each, as for the other gRPC figures:

- **off**: the bench's own organisation, with no plan (its answer from metering is "no subscription", cached
  like any other, so each batch still costs a cache lookup);
- **on**: an organisation on a plan with a hard quota on ``bench.requests`` enforced at ingest, too large ever
  to be reached, so every batch is judged: its per-metric total from the native scanner is counted against the
  cached window (and metering is asked again whenever the cached answer is older than ingest's TTL).

Metering runs during both (ingest asks it); it also consumes both sides' events, equally. Reported: the best
round of each side and their ratio (as the other gRPC figures), and the median of the rounds' own ratios.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from google.protobuf import json_format

from bench import grpc_driver
from bench.stack import COUNT_METRIC, Stack
from bench.stack import channel as stack_channel
from bench.workload import Workload
from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing.metering.v1 import metering_pb2, metering_pb2_grpc

QUOTA_LIMIT = "1000000000000"
ROUNDS = 5


@dataclass
class EnforcementFigures:
    off: float = 0.0
    on: float = 0.0
    refused: int = 0
    round_ratios: list[float] = field(default_factory=list)  # on / off of each round

    @property
    def ratio(self) -> float:
        return self.on / self.off if self.off else 0.0

    @property
    def median_round_ratio(self) -> float:
        return statistics.median(self.round_ratios) if self.round_ratios else 0.0


async def enforced_key(stack: Stack, say: Callable[[str], None]) -> str:
    """A new organisation on a plan enforcing a hard quota at ingest, with a project; its API key."""
    terms = json_format.ParseDict({
        "currency": "INR", "base_fee": "0",
        "charges": [{"metric_code": COUNT_METRIC, "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0"}}],
        "quotas": [{"metric_code": COUNT_METRIC, "limit": QUOTA_LIMIT, "cap": "QUOTA_CAP_HARD"}],
        "enforce_quotas_at_ingest": True,
    }, invoicing_pb2.PlanTerms())
    async with (stack_channel(stack.invoicing_address) as invoicing_channel,
                stack_channel(stack.metering_address) as metering_channel,
                stack_channel(stack.ingest_address) as ingest_channel):
        invoicing = invoicing_pb2_grpc.InvoicingServiceStub(invoicing_channel)
        organisation = (await invoicing.CreateOrganisation(invoicing_pb2.CreateOrganisationRequest(
            name=f"Bench enforced {secrets.token_hex(3)}", billing_email="bench@example.com", billing_currency="INR",
            country="IN", state_code="29", timezone="Asia/Kolkata"))).organisation
        metric = metering_pb2.CreateMetricRequest(
            organisation_id=organisation.id, code=COUNT_METRIC, name="Requests",
            aggregation=metering_pb2.AGGREGATION_COUNT)
        await metering_pb2_grpc.MeteringServiceStub(metering_channel).CreateMetric(metric)
        plan = (await invoicing.CreatePlan(invoicing_pb2.CreatePlanRequest(
            code=f"bench-enforced-{secrets.token_hex(3)}", name="Bench enforced", terms=terms))).plan
        await invoicing.CreateSubscription(invoicing_pb2.CreateSubscriptionRequest(
            organisation_id=organisation.id, plan_version_id=plan.latest_version.id))
        ingest = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
        project = (await ingest.CreateProject(ingest_pb2.CreateProjectRequest(
            organisation_id=organisation.id, name="bench-enforced"))).project
        key = (await ingest.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id, name="bench"))).secret
    say(f"  plan {plan.code}: hard quota of {QUOTA_LIMIT} {COUNT_METRIC} a period, enforced at ingest")
    return key


def run(stack: Stack, off_key: str, workload: Workload, warmup: Workload, window: int,
        say: Callable[[str], None]) -> EnforcementFigures:
    on_key = asyncio.run(enforced_key(stack, say))
    figures = EnforcementFigures()
    for key in (off_key, on_key):
        asyncio.run(grpc_driver.drive(stack.ingest_address, key, warmup.payloads, warmup.batch_events, window))
    part = -(-len(workload.payloads) // ROUNDS)
    for number, start in enumerate(range(0, len(workload.payloads), part)):
        payloads = workload.payloads[start : start + part]
        sizes = workload.batch_events[start : start + part]
        order = [("off", off_key), ("on", on_key)]
        if number % 2:
            order.reverse()
        rates = {}
        for side, key in order:
            result = asyncio.run(grpc_driver.drive(stack.ingest_address, key, payloads, sizes, window))
            if side == "on":
                figures.refused += result.rejected
            rates[side] = result.rate
        figures.round_ratios.append(rates["on"] / rates["off"])
        figures.off = max(figures.off, rates["off"])
        figures.on = max(figures.on, rates["on"])
        say(f"  {sum(sizes):,} events: enforcement off {rates['off']:,.0f}/s, on {rates['on']:,.0f}/s")
    return figures
