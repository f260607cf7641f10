"""A batch of accepted events as metering stores them: one column per field, ready for a multi-row insert.

Ingest has validated every event; what is checked here is what metering needs to store a batch at all.
The database checks the rest (value finite, metric format, id length), so a batch that breaks the contract
fails as a whole and is dead-lettered rather than half-counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.metering.domain.metric import CODE


class PoisonBatch(Exception):
    """A message that can never be stored, however often it is retried: it goes to the dead letters."""

    def __init__(self, reason: str, kind: str = "invalid_batch") -> None:
        super().__init__(reason)
        self.reason = reason
        # A short, fixed label for metrics: undecodable, invalid_batch, rejected_by_database, too_many_deliveries.
        self.kind = kind


@dataclass
class EventColumns:
    """Events of one or more batches, column by column (timestamps as microseconds since the Unix epoch)."""

    organisation_ids: list[str] = field(default_factory=list)
    project_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    timestamps_us: list[int] = field(default_factory=list)
    # Each event's dimensions as a JSON object, "null" for an event without any.
    dimensions: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.event_ids)

    def extend(self, other: EventColumns) -> None:
        self.organisation_ids += other.organisation_ids
        self.project_ids += other.project_ids
        self.event_ids += other.event_ids
        self.metrics += other.metrics
        self.values += other.values
        self.timestamps_us += other.timestamps_us
        self.dimensions += other.dimensions

    @classmethod
    def concat(cls, parts: list[EventColumns]) -> EventColumns:
        if len(parts) == 1:
            return parts[0]
        merged = cls()
        for part in parts:
            merged.extend(part)
        return merged


def check_owner(organisation_id: str, project_id: str) -> None:
    """Raise PoisonBatch unless the batch names its organisation and project (events are keyed by them)."""
    if not organisation_id:
        raise PoisonBatch("batch has no organisation_id")
    if not project_id:
        raise PoisonBatch("batch has no project_id")


def check_metric_codes(metrics: list[str]) -> None:
    """Raise PoisonBatch if an event's metric is not a metric code. Checked once per distinct code: a batch
    carries few, and this runs for every event metering stores."""
    for code in set(metrics):
        if not CODE.fullmatch(code):
            raise PoisonBatch(f"event metric {code[:80]!r} is not a lowercase metric code")
