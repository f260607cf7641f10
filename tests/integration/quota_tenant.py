"""An organisation on a plan with one quota, subscribed since last month, with a project and key: what the
quota enforcement tests of ingest and of the gateway start from."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from google.protobuf import json_format

from billing.ingest.v1 import ingest_pb2
from billing.invoicing.v1 import invoicing_pb2 as inv
from billing.metering.v1 import metering_pb2 as pb
from billing_runtime.timestamps import to_timestamp
from services.invoicing.adapters.tables import organisations
from tests.integration.helpers import organisation_request

CODE = "api.calls"


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def tenant(invoicing, invoicing_stub, ingest_stub, metering_stub, cap: str, limit: str,
                 aggregation: int = pb.AGGREGATION_COUNT, **terms: Any):
    """An organisation (UTC) on a plan with one quota on a metric (a count unless said), subscribed since the start
    of the previous month so that backdated events land in a billing period of the subscription; a project and key.

    A subscription cannot start before its organisation exists, so the organisation is made a customer since
    two months ago (as one migrated from an older system would be)."""
    organisation = (await invoicing_stub.CreateOrganisation(organisation_request(timezone="UTC"))).organisation
    async with invoicing.engine.begin() as conn:
        await conn.execute(sa.update(organisations).where(organisations.c.id == organisation.id)
                           .values(created_at=datetime.now(UTC) - timedelta(days=70)))
    await metering_stub.CreateMetric(pb.CreateMetricRequest(
        organisation_id=organisation.id, code=CODE, name="API calls", aggregation=aggregation))
    message = json_format.ParseDict({
        "currency": "INR", "base_fee": "0",
        "charges": [{"metric_code": CODE, "charge": {"model": "CHARGE_MODEL_PER_UNIT", "unit_price": "0.10"}}],
        "quotas": [{"metric_code": CODE, "limit": limit, "cap": cap}], **terms,
    }, inv.PlanTerms())
    plan = (await invoicing_stub.CreatePlan(inv.CreatePlanRequest(
        code=f"enforced-{secrets.token_hex(4)}", name="Enforced", terms=message))).plan
    last_month = (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)
    await invoicing_stub.CreateSubscription(inv.CreateSubscriptionRequest(
        organisation_id=organisation.id, plan_version_id=plan.latest_version.id, start_date=last_month.isoformat()))
    project = (await ingest_stub.CreateProject(ingest_pb2.CreateProjectRequest(
        organisation_id=organisation.id, name=f"p{secrets.token_hex(4)}"))).project
    key = (await ingest_stub.CreateApiKey(ingest_pb2.CreateApiKeyRequest(project_id=project.id))).secret
    return organisation.id, project, key


def events(prefix: str, count: int, when: datetime) -> ingest_pb2.IngestEventsRequest:
    return ingest_pb2.IngestEventsRequest(events=[
        ingest_pb2.Event(event_id=f"{prefix}{i}", metric=CODE, value="1", timestamp=to_timestamp(when))
        for i in range(count)
    ])
