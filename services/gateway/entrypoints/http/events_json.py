"""The REST event body, as the existing clients send it, turned into ingest's protobuf events; and ingest's
batch outcome turned back into a result for every event.

An event object is ``{"metricName", "metricValue", "unit", "timestamp", "metadata", "idempotencyKey"}``
(``eventId`` is accepted for ``idempotencyKey``). A body is one such object, a list of them, or
``{"events": [...]}``. Numbers are parsed as ``Decimal`` (never ``float``), so ``0.1`` reaches ingest as
``"0.1"``. This module checks only the JSON shape of each event; ingest owns the domain rules (metric name
format, value range, time window, dimension sizes) and reports them per event with the same index.

This runs once per event at full ingest rate, so it is plain dict and string work: no model per event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.ingest.v1 import ingest_pb2
from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http.input_policy import clip

# Ingest's bound on an event id: longer ones are refused at the gateway and never sent (nor echoed back whole).
MAX_EVENT_ID_LENGTH = 128
FIELDS = frozenset({"metricName", "metricValue", "unit", "timestamp", "metadata", "idempotencyKey", "eventId"})
# Ingest names the protobuf field at fault; the client sent the REST one.
REST_FIELD = {"metric": "metricName", "value": "metricValue", "event_id": "idempotencyKey",
              "dimensions": "metadata", "timestamp": "timestamp", "unit": "unit"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# google.protobuf.Timestamp covers years 1 to 9999.
_MIN_SECONDS, _MAX_SECONDS = -62135596800, 253402300799
# Past this, an epoch number is almost surely milliseconds (the year 5138 in seconds).
_LIKELY_MILLISECONDS = 100_000_000_000

STATUS_NAMES = {
    ingest_pb2.EVENT_STATUS_ACCEPTED: "accepted",
    ingest_pb2.EVENT_STATUS_DUPLICATE: "duplicate",
    ingest_pb2.EVENT_STATUS_REJECTED: "rejected",
}


class EventShapeError(Exception):
    """One event's JSON shape is wrong: that event is rejected, the others go on."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


@dataclass
class ParsedEvents:
    """The events of one request, split into what goes to ingest and what the gateway rejected itself."""

    total: int
    request: ingest_pb2.IngestEventsRequest
    # Original index of each event in ``request.events``; None when every event was sent (index = position).
    sent_indexes: list[int] | None
    # Original index -> (client's event id or "", field, reason).
    rejected: dict[int, tuple[str, str, str]] = field(default_factory=dict)


class NonFinite:
    """``NaN``, ``Infinity`` or ``-Infinity`` in the body: not JSON, but Python's parser reads them; the event
    holding one is rejected (not the whole request)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def load_body(body: bytes) -> list[Any]:
    """The raw event items of a body: one object, a list, or ``{"events": [...]}``. 400 for anything else."""
    try:
        document = json.loads(body, parse_float=Decimal, parse_constant=NonFinite)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidArgument(f"request body: is not valid JSON ({error})") from None
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        if "events" in document:
            if len(document) != 1:
                raise InvalidArgument("request body: with 'events', no other top-level field is allowed",
                                      field="events")
            events = document["events"]
            if not isinstance(events, list):
                raise InvalidArgument("must be a JSON list of event objects", field="events")
            return events
        return [document]
    raise InvalidArgument("request body: must be an event object, a list of them, or {\"events\": [...]}")


def parse_events(body: bytes, received: datetime) -> ParsedEvents:
    """Parse a request body into an ``IngestEventsRequest``; events without a timestamp get ``received``."""
    items = load_body(body)
    request = ingest_pb2.IngestEventsRequest()
    add = request.events.add
    received_seconds, received_nanos = _epoch(received)
    rejected: dict[int, tuple[str, str, str]] = {}
    sent: list[int] = []
    for index, item in enumerate(items):
        try:
            fields, dimensions, timestamp = _event_fields(item)
        except EventShapeError as error:
            event_id = item.get("idempotencyKey", item.get("eventId")) if isinstance(item, dict) else ""
            rejected[index] = (clip(event_id) if isinstance(event_id, str) else "", error.field, error.reason)
            continue
        try:
            event = add(**fields)
            if dimensions:
                # Item by item: a protobuf map's update() (and the constructor's dimensions=) is a slow Python loop.
                target = event.dimensions
                for key, value in dimensions.items():
                    target[key] = value
        except UnicodeEncodeError:  # JSON allows "\ud800"; protobuf strings (UTF-8) do not
            if len(request.events) > len(sent):
                del request.events[-1]
            event_id = fields.get("event_id", "")
            rejected[index] = (event_id if _encodable(event_id) else "", "",
                               "holds a lone surrogate escape such as \\ud800, which is not valid Unicode text")
            continue
        seconds, nanos = (received_seconds, received_nanos) if timestamp is None else timestamp
        event.timestamp.seconds = seconds
        event.timestamp.nanos = nanos
        sent.append(index)
    return ParsedEvents(
        total=len(items), request=request, sent_indexes=sent if rejected else None, rejected=rejected
    )


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _event_fields(item: Any) -> tuple[dict[str, Any], dict[str, str] | None, tuple[int, int] | None]:
    """One event's scalar fields (keyword arguments of ``ingest_pb2.Event``), its dimensions, and its timestamp
    as (seconds, nanos) if it has one; or EventShapeError."""
    if not isinstance(item, dict):
        raise EventShapeError("", f"must be an event object, not {_json_type(item)}")
    if not FIELDS.issuperset(item):
        unknown = sorted(set(item) - FIELDS)
        raise EventShapeError(unknown[0], f"is not an event field (known: {', '.join(sorted(FIELDS))})")
    fields: dict[str, Any] = {}

    metric = item.get("metricName")
    if metric is not None:
        if not isinstance(metric, str):
            raise EventShapeError("metricName", f"must be a string, not {_json_type(metric)}")
        fields["metric"] = metric

    value = item.get("metricValue")
    if value is not None:
        if isinstance(value, str):
            fields["value"] = value
        elif isinstance(value, (int, Decimal)) and not isinstance(value, bool):
            fields["value"] = str(value)
        else:
            raise EventShapeError("metricValue", f"must be a number or a decimal string, not {_json_type(value)}")

    event_id = _event_id(item)
    if event_id:
        fields["event_id"] = event_id

    unit = item.get("unit")
    if unit is not None:
        if not isinstance(unit, str):
            raise EventShapeError("unit", f"must be a string, not {_json_type(unit)}")
        fields["unit"] = unit

    metadata = item.get("metadata")
    dimensions = _dimensions(metadata) if metadata is not None else None
    timestamp = item.get("timestamp")
    return fields, dimensions, (parse_timestamp(timestamp) if timestamp is not None else None)


def _event_id(item: dict[str, Any]) -> str:
    key = item.get("idempotencyKey")
    alias = item.get("eventId")
    if key is not None and alias is not None and key != alias:
        raise EventShapeError("eventId", "differs from idempotencyKey; send one of them (they are the same thing)")
    value = key if key is not None else alias
    if value is None:
        return ""
    name = "idempotencyKey" if key is not None else "eventId"
    if isinstance(value, str):
        if len(value) > MAX_EVENT_ID_LENGTH:  # refused here: never sent to ingest, never echoed back in full
            raise EventShapeError(name, f"is {len(value)} characters long; at most {MAX_EVENT_ID_LENGTH} allowed")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise EventShapeError(name, f"must be a string, not {_json_type(value)}")


def _dimensions(metadata: Any) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise EventShapeError("metadata", f"must be a flat object of strings, numbers or booleans, "
                                          f"not {_json_type(metadata)}")
    dimensions: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            dimensions[key] = value
        elif isinstance(value, bool):  # before int: bool is an int
            dimensions[key] = "true" if value else "false"
        elif isinstance(value, (int, Decimal)):
            dimensions[key] = str(value)
        else:
            raise EventShapeError(f"metadata.{key}", f"must be a string, number or boolean, not {_json_type(value)}"
                                                     " (metadata is flat)")
    return dimensions


def parse_timestamp(value: Any) -> tuple[int, int]:
    """(seconds, nanos) since the epoch from an RFC 3339 / ISO 8601 string or epoch seconds.

    A string without an offset is taken as UTC. Fractions finer than microseconds are truncated by the ISO
    parser; epoch numbers keep nanoseconds.
    """
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise EventShapeError(
                "timestamp", f"{value!r} is not an RFC 3339 time such as 2025-01-31T12:00:00Z, nor epoch seconds"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return _epoch(moment)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        seconds = int(value)  # toward zero; the fraction below is then non-negative after adjusting
        fraction = Decimal(value) - seconds
        if fraction < 0:
            seconds -= 1
            fraction += 1
        if not _MIN_SECONDS <= seconds <= _MAX_SECONDS or seconds >= _LIKELY_MILLISECONDS:
            hint = " (epoch milliseconds? send seconds)" if seconds >= _LIKELY_MILLISECONDS else ""
            raise EventShapeError("timestamp", f"{value} is out of range for epoch seconds{hint}")
        return seconds, int(fraction * 1_000_000_000)
    raise EventShapeError("timestamp", f"must be an RFC 3339 string or epoch seconds, not {_json_type(value)}")


def _epoch(moment: datetime) -> tuple[int, int]:
    delta = moment - _EPOCH  # exact, unlike datetime.timestamp() which goes through a float
    return delta.days * 86400 + delta.seconds, delta.microseconds * 1000


def _json_type(value: Any) -> str:
    if isinstance(value, NonFinite):
        return f"{value.name} (only finite numbers are allowed)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object"


def merge_results(parsed: ParsedEvents, outcome: ingest_pb2.BatchOutcome | None) -> dict[str, Any]:
    """The 202 body: counts, and a result for every event of the request in its original order.

    ``outcome.results`` lists only the events ingest did not plainly accept; every other sent event is
    accepted under the id it was sent with.
    """
    events = parsed.request.events
    to_original = parsed.sent_indexes
    results: list[dict[str, Any] | None] = [None] * parsed.total
    if outcome is not None:
        for result in outcome.results:
            index = to_original[result.index] if to_original is not None else result.index
            entry: dict[str, Any] = {"index": index, "eventId": result.event_id,
                                     "status": STATUS_NAMES.get(result.status, "rejected")}
            if result.reason:  # why rejected, or what it duplicates
                entry["reason"] = result.reason
            if result.status == ingest_pb2.EVENT_STATUS_REJECTED:
                entry["field"] = _rest_field(result.field)
            if result.event_id_generated:
                entry["eventIdGenerated"] = True
            results[index] = entry
    for index, (event_id, field_name, reason) in parsed.rejected.items():
        results[index] = {"index": index, "eventId": event_id, "status": "rejected", "reason": reason,
                          "field": field_name}
    for position, index in enumerate(to_original if to_original is not None else range(len(events))):
        if results[index] is None:
            results[index] = {"index": index, "eventId": events[position].event_id, "status": "accepted"}
    return {
        "accepted": outcome.accepted_count if outcome is not None else 0,
        "duplicates": outcome.duplicate_count if outcome is not None else 0,
        "rejected": (outcome.rejected_count if outcome is not None else 0) + len(parsed.rejected),
        "results": results,
    }


def all_refused(parsed: ParsedEvents, reason: str) -> ingest_pb2.BatchOutcome:
    """The outcome when ingest refused every event it was sent for a quota (RESOURCE_EXHAUSTED, which carries
    no per-event results): each sent event rejected with ingest's reason, which names the quota."""
    events = parsed.request.events
    return ingest_pb2.BatchOutcome(
        rejected_count=len(events),
        results=[
            ingest_pb2.EventResult(index=i, event_id=e.event_id, status=ingest_pb2.EVENT_STATUS_REJECTED,
                                   reason=reason, field="metric")
            for i, e in enumerate(events)
        ],
    )


def _rest_field(name: str) -> str:
    """Ingest's field name in the client's terms: ``dimensions.region`` -> ``metadata.region``."""
    head, dot, rest = name.partition(".")
    return REST_FIELD.get(head, head) + dot + rest if name else name
