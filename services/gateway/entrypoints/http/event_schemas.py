"""The REST shapes of event ingestion, for the OpenAPI document only.

Bodies are parsed by :mod:`events_json` (exact decimals, a result per event, no model per event); these
models describe the same shapes to readers of ``/docs``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field


class EventIn(BaseModel):
    """One usage event, in the shape existing clients send."""

    metricName: str = Field(description="The metric's code", examples=["api_calls"])  # noqa: N815 - wire names
    metricValue: Decimal | str = Field(  # noqa: N815
        description="A finite decimal: a JSON number (read exactly, never as a float) or a decimal string",
        examples=["0.1"],
    )
    unit: str | None = Field(None, examples=["requests"])
    timestamp: datetime | Decimal | None = Field(
        None, description="RFC 3339 (an offset, or UTC if none) or epoch seconds; missing means now",
        examples=["2025-01-31T12:00:00Z"],
    )
    metadata: dict[str, str | Decimal | bool] | None = Field(
        None, description="Flat: strings, numbers or booleans (kept as strings); at most 32 keys",
        examples=[{"model": "gpt-4o", "region": "eu"}],
    )
    idempotencyKey: str | None = Field(  # noqa: N815
        None, description="Unique within the project; the same key twice is one event. `eventId` is accepted "
        "too. Missing: one is generated and returned", examples=["req-7f3a-0001"],
    )


class EventResult(BaseModel):
    index: int = Field(description="Position in the request, from 0")
    eventId: str  # noqa: N815
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = Field(None, description="Why a rejected event was refused")
    field: str | None = Field(None, description="The event field at fault", examples=["metricValue"])
    eventIdGenerated: bool | None = Field(None, description="True when the server generated eventId")  # noqa: N815


class IngestResult(BaseModel):
    accepted: int = Field(description="Durable in JetStream; each will be counted once")
    duplicates: int = Field(description="Repeats of an event already received; counted once")
    rejected: int
    results: list[EventResult] = Field(description="One per event, in request order")


_EVENT_SCHEMA = EventIn.model_json_schema()
EVENTS_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    _EVENT_SCHEMA,
                    {"type": "array", "items": _EVENT_SCHEMA, "title": "A list of events"},
                    {"type": "object", "properties": {"events": {"type": "array", "items": _EVENT_SCHEMA}},
                     "required": ["events"], "title": "{\"events\": [...]}"},
                ]
            },
            "example": [
                {"metricName": "api_calls", "metricValue": 1, "timestamp": "2025-01-31T12:00:00Z",
                 "metadata": {"endpoint": "/v1/search"}, "idempotencyKey": "req-7f3a-0001"},
                {"metricName": "llm_tokens", "metricValue": "1536", "metadata": {"model": "gpt-4o"},
                 "eventId": "req-7f3a-0002"},
            ],
        }
    },
}
