"""Reading a batch's acknowledgement: which events were rejected and why, and each waiting event's own result."""

from __future__ import annotations

from billing.ingest.v1 import ingest_pb2
from billing_client.batching import Batch
from billing_client.results import EventResult, EventStatus, RejectedEvent

_STATUS = {
    ingest_pb2.EVENT_STATUS_ACCEPTED: EventStatus.ACCEPTED,
    ingest_pb2.EVENT_STATUS_DUPLICATE: EventStatus.DUPLICATE,
    ingest_pb2.EVENT_STATUS_REJECTED: EventStatus.REJECTED,
}


def rejections(batch: Batch, outcome: ingest_pb2.BatchOutcome) -> list[RejectedEvent]:
    """The batch's rejected events, with the metric and value the caller sent and ingest's reason and field."""
    found = []
    for result in outcome.results:
        if result.status != ingest_pb2.EVENT_STATUS_REJECTED:
            continue
        event = batch.events[result.index] if 0 <= result.index < len(batch.events) else None
        found.append(
            RejectedEvent(
                event_id=result.event_id or (event.event_id if event else ""),
                metric=event.metric if event else "",
                value=event.value if event else "",
                reason=result.reason,
                field=result.field,
                sequence=batch.sequence,
                index=result.index,
            )
        )
    return found


def resolve_waiters(batch: Batch, outcome: ingest_pb2.BatchOutcome) -> None:
    """Give each waiting event its result: the one ingest listed for it, else accepted (results list only the
    events that were not plainly accepted)."""
    if not batch.waiters:
        return
    notable = {result.index: result for result in outcome.results}
    for index, waiter in batch.waiters.items():
        if waiter.done():
            continue
        result = notable.get(index)
        event_id = batch.events[index].event_id
        if result is None:
            waiter.set_result(EventResult(event_id, EventStatus.ACCEPTED))
        else:
            status = _STATUS.get(result.status, EventStatus.ACCEPTED)
            waiter.set_result(EventResult(event_id, status, result.reason, result.field))


def fail_waiters(batches: list[Batch], error: BaseException) -> None:
    """Every event still waiting for its result gets the sender's failure instead."""
    for batch in batches:
        for waiter in (batch.waiters or {}).values():
            if not waiter.done():
                waiter.set_exception(error)
