"""Protobuf <-> domain for ingest's contract and events."""

from __future__ import annotations

from datetime import datetime

from billing.ingest.v1 import events_pb2, ingest_pb2
from billing_runtime.timestamps import to_timestamp as timestamp
from services.ingest.domain.api_key import ApiKey, ApiKeyState
from services.ingest.domain.event import ACCEPTED, DUPLICATE, REJECTED, BatchOutcome
from services.ingest.domain.project import Project

PROJECT_CREATED = "billing.ingest.v1.project.created"
API_KEY_CREATED = "billing.ingest.v1.api_key.created"
API_KEY_REVOKED = "billing.ingest.v1.api_key.revoked"

_STATES = {
    ApiKeyState.ACTIVE: ingest_pb2.API_KEY_STATE_ACTIVE,
    ApiKeyState.EXPIRED: ingest_pb2.API_KEY_STATE_EXPIRED,
    ApiKeyState.REVOKED: ingest_pb2.API_KEY_STATE_REVOKED,
}

_EVENT_STATUSES = {
    ACCEPTED: ingest_pb2.EVENT_STATUS_ACCEPTED,
    DUPLICATE: ingest_pb2.EVENT_STATUS_DUPLICATE,
    REJECTED: ingest_pb2.EVENT_STATUS_REJECTED,
}


def project_to_pb(project: Project) -> ingest_pb2.Project:
    return ingest_pb2.Project(
        id=project.id, organisation_id=project.organisation_id, name=project.name,
        create_time=timestamp(project.created_at),
    )


def api_key_to_pb(key: ApiKey, now: datetime) -> ingest_pb2.ApiKey:
    message = ingest_pb2.ApiKey(
        id=key.id, project_id=key.project_id, name=key.name, prefix=key.prefix, state=_STATES[key.state(now)],
        create_time=timestamp(key.created_at),
    )
    if key.expires_at is not None:
        message.expire_time.CopyFrom(timestamp(key.expires_at))
    if key.revoked_at is not None:
        message.revoke_time.CopyFrom(timestamp(key.revoked_at))
    return message


def project_created(event_id: str, project: Project) -> events_pb2.ProjectCreated:
    return events_pb2.ProjectCreated(event_id=event_id, project=project_to_pb(project))


def api_key_created(event_id: str, key: ApiKey, now: datetime) -> events_pb2.ApiKeyCreated:
    return events_pb2.ApiKeyCreated(event_id=event_id, api_key=api_key_to_pb(key, now))


def api_key_revoked(event_id: str, key: ApiKey, now: datetime) -> events_pb2.ApiKeyRevoked:
    return events_pb2.ApiKeyRevoked(event_id=event_id, api_key=api_key_to_pb(key, now))


def outcome_to_pb(outcome: BatchOutcome) -> ingest_pb2.BatchOutcome:
    return ingest_pb2.BatchOutcome(
        accepted_count=outcome.accepted,
        duplicate_count=outcome.duplicates,
        rejected_count=outcome.rejected,
        results=[
            ingest_pb2.EventResult(
                index=r.index, event_id=r.event_id, status=_EVENT_STATUSES[r.status], reason=r.reason,
                field=r.field, event_id_generated=r.generated,
            )
            for r in outcome.results
        ],
    )
