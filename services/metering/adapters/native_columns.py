"""Metering's native event decoder (``services/metering/native/event_columns.c``) through ctypes.

It turns one serialized ``EventBatchAccepted`` into insert columns without a Python object per field: joined
text that Python splits in one call per column. When the library is not built (no C compiler where
``make protos`` ran) or a message holds anything unusual, :meth:`ColumnDecoder.decode` returns None and the
protobuf decoder does the work, with the same result.
"""

from __future__ import annotations

import ctypes
from array import array
from dataclasses import dataclass
from pathlib import Path

from billing_runtime import native

LIBRARY_ENV = "BILLING_EVENT_COLUMNS_LIBRARY"
# JSON escapes a control character in six bytes.
_JSON_EXPANSION = 6


class _Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_size_t), ("cap", ctypes.c_size_t)]


class _Columns(ctypes.Structure):
    _fields_ = [
        ("ids", _Buffer),
        ("metrics", _Buffer),
        ("values", _Buffer),
        ("dimensions", _Buffer),
        ("timestamps_us", ctypes.POINTER(ctypes.c_int64)),
        ("timestamps_cap", ctypes.c_size_t),
        ("organisation_at", ctypes.c_int64),
        ("organisation_len", ctypes.c_int64),
        ("project_at", ctypes.c_int64),
        ("project_len", ctypes.c_int64),
    ]


@dataclass(frozen=True)
class DecodedBatch:
    organisation_id: str
    project_id: str
    event_ids: list[str]
    metrics: list[str]
    values: list[str]
    timestamps_us: list[int]
    # Each event's dimensions as JSON text, "null" for none.
    dimensions: list[str]


class ColumnDecoder:
    def __init__(self, library: ctypes.CDLL) -> None:
        self._decode = library.event_columns
        self._decode.restype = ctypes.c_int64
        self._decode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_Columns)]

    def decode(self, payload: bytes) -> DecodedBatch | None:
        # Dimensions' JSON is about as long as their wire form; only control characters (escaped in six bytes)
        # can make it longer, so a message that does not fit is decoded again with room for the worst case.
        return self._decode_with(payload, 2) or self._decode_with(payload, _JSON_EXPANSION)

    def _decode_with(self, payload: bytes, json_expansion: int) -> DecodedBatch | None:
        size = len(payload)
        text = [ctypes.create_string_buffer(size + 1) for _ in range(3)]
        json = ctypes.create_string_buffer(size * json_expansion + 64)
        stamps = (ctypes.c_int64 * (size // 2 + 1))()
        out = _Columns(
            *(_Buffer(ctypes.addressof(buffer), 0, len(buffer)) for buffer in (*text, json)),
            stamps,
            len(stamps),
        )
        count = self._decode(payload, size, ctypes.byref(out))
        if count < 0 or out.organisation_at < 0 or out.project_at < 0:
            return None

        def column(used: _Buffer, separator: str) -> list[str]:
            return ctypes.string_at(used.data, used.len).decode().split(separator) if count else []

        return DecodedBatch(
            organisation_id=payload[out.organisation_at : out.organisation_at + out.organisation_len].decode(),
            project_id=payload[out.project_at : out.project_at + out.project_len].decode(),
            event_ids=column(out.ids, "\x1f"),
            metrics=column(out.metrics, "\x1f"),
            values=column(out.values, "\x1f"),
            timestamps_us=array("q", ctypes.string_at(stamps, count * 8)).tolist(),
            dimensions=column(out.dimensions, "\x1e"),
        )


LIBRARY = "libeventcolumns.so"


def library_path() -> Path:
    return native.library_path(LIBRARY, LIBRARY_ENV)


def load() -> ColumnDecoder | None:
    library = native.load_library(LIBRARY, LIBRARY_ENV, "metering decodes events in Python")
    return ColumnDecoder(library) if library is not None else None
