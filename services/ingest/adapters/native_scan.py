"""The native event scanner (``services/ingest/native/event_scan.c``) through ctypes.

It answers one question about a serialized batch, at C speed: is every event clean (valid, with its own id and
timestamp, no id repeated)? Then ingest forwards the client's bytes to the event log untouched. When the
library is not built (no C compiler where ``make protos`` ran), :func:`load` returns None and every batch takes
the Python path, which gives the same answers, more slowly.
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from billing_runtime import native
from services.ingest.domain.event import MAX_EVENT_ID_LENGTH, MAX_UNIT_LENGTH, EventLimits
from services.ingest.domain.quota import MetricUsage

LIBRARY_ENV = "BILLING_EVENT_SCAN_LIBRARY"
_CLEAN = 0


class _Limits(ctypes.Structure):
    _fields_ = [
        ("min_seconds", ctypes.c_int64),
        ("max_seconds", ctypes.c_int64),
        ("max_events", ctypes.c_int32),
        ("max_dimensions", ctypes.c_int32),
        ("max_key_chars", ctypes.c_int32),
        ("max_value_chars", ctypes.c_int32),
        ("max_unit_chars", ctypes.c_int32),
        ("max_event_id_chars", ctypes.c_int32),
    ]


class _MetricSummary(ctypes.Structure):
    _fields_ = [
        ("name_offset", ctypes.c_size_t),
        ("name_len", ctypes.c_size_t),
        ("events", ctypes.c_int32),
        ("exact", ctypes.c_int32),
        ("min_seconds", ctypes.c_int64),
        ("max_seconds", ctypes.c_int64),
        ("sum", ctypes.c_int64),
        ("max", ctypes.c_int64),
    ]


class _Result(ctypes.Structure):
    _fields_ = [
        ("events", ctypes.c_int32),
        ("sequence", ctypes.c_uint64),
        ("ids", ctypes.c_void_p),
        ("ids_len", ctypes.c_size_t),
        ("metrics", ctypes.POINTER(_MetricSummary)),
        ("max_metrics", ctypes.c_int32),
        ("metric_count", ctypes.c_int32),
    ]


# Distinct metric codes summarised per batch; a batch with more takes the Python path when quotas are enforced.
MAX_SUMMARISED_METRICS = 16


@dataclass(frozen=True)
class CleanBatch:
    events: int
    sequence: int
    # The event ids joined by NUL: what the batch's message id digests.
    joined_ids: bytes
    # One per distinct metric code, in order of first appearance; None when there were too many to summarise.
    metrics: tuple[MetricUsage, ...] | None = None


class EventScanner:
    """Scans serialized requests whose events are field ``events_field`` (2 in every batch message)."""

    def __init__(self, library: ctypes.CDLL, events_field: int = 2) -> None:
        self._scan = library.scan_events
        self._scan.restype = ctypes.c_int
        self._scan.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.POINTER(_Limits), ctypes.POINTER(_Result)
        ]
        self._events_field = events_field
        # Reused between calls (screening is synchronous on the event loop), grown as batches grow.
        self._ids = ctypes.create_string_buffer(64 * 1024)
        self._metrics = (_MetricSummary * MAX_SUMMARISED_METRICS)()

    def clean(self, data: bytes, now: datetime, limits: EventLimits) -> CleanBatch | None:
        """The batch's shape if every event is clean; None if any is not (the Python path then decides)."""
        now_seconds = now.timestamp()
        bounds = _Limits(
            min_seconds=math.ceil(now_seconds - limits.past_window.total_seconds()),
            max_seconds=math.floor(now_seconds + limits.future_window.total_seconds()),
            max_events=limits.max_batch_events,
            max_dimensions=limits.max_dimensions,
            max_key_chars=limits.max_dimension_key_length,
            max_value_chars=limits.max_dimension_value_length,
            max_unit_chars=MAX_UNIT_LENGTH,
            max_event_id_chars=MAX_EVENT_ID_LENGTH,
        )
        if len(self._ids) < len(data):
            self._ids = ctypes.create_string_buffer(len(data) * 2)
        # metric_count starts at -1 ("no totals"), so a library built before the totals existed (gen/ not rebuilt)
        # sends batches to the Python path when quotas are enforced rather than skipping their check.
        result = _Result(ids=ctypes.addressof(self._ids), metrics=self._metrics, max_metrics=MAX_SUMMARISED_METRICS,
                         metric_count=-1)
        verdict = self._scan(data, len(data), self._events_field, ctypes.byref(bounds), ctypes.byref(result))
        if verdict != _CLEAN:
            return None
        metrics = None
        if result.metric_count >= 0:
            metrics = tuple(
                MetricUsage(
                    data[m.name_offset : m.name_offset + m.name_len].decode("ascii"), m.events, m.min_seconds,
                    m.max_seconds, m.sum if m.exact else None, m.max if m.exact else None,
                )
                for m in self._metrics[: result.metric_count]
            )
        return CleanBatch(result.events, result.sequence, ctypes.string_at(self._ids, result.ids_len), metrics)


LIBRARY = "libeventscan.so"


def library_path() -> Path:
    return native.library_path(LIBRARY, LIBRARY_ENV)


def load() -> EventScanner | None:
    library = native.load_library(LIBRARY, LIBRARY_ENV, "every batch takes the Python path")
    return EventScanner(library) if library is not None else None
