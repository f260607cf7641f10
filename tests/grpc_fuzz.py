"""Hypothesis strategies for protobuf messages, built from their descriptors: what the gRPC fuzz tests send.

``messages(descriptor)`` draws instances of any message with every kind of field a client can put on the wire:
text with NUL and every plane of Unicode (protobuf strings cannot carry lone surrogates, so none are drawn),
strings up to 100 KB, the extremes of every integer width, NaN and infinities for floats, unknown enum numbers
(proto3 enums are open), repeated fields, maps, oneofs, nested messages down to a depth, and
``google.protobuf.Timestamp``/``Duration`` with out-of-range seconds and nanos. Values that look like the ids the
services use (UUIDs, ``org_...``) are mixed in so that some requests get past the first lookup.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

LONG_TEXT_MAX = 100_000
MAX_REPEATED = 4

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32, FieldDescriptor.TYPE_SINT32: INT32, FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64, FieldDescriptor.TYPE_SINT64: INT64, FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32, FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64, FieldDescriptor.TYPE_FIXED64: UINT64,
}

# Any code point but surrogates (Cs), which protobuf refuses to serialise.
_CHARACTERS = st.characters(exclude_categories=("Cs",))
_SPECIAL_TEXT = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\u202e", "\ufeff", "😀", "null", "-1", "0", "1e309", "NaN", "../../etc/passwd",
    "'; DROP TABLE x; --", "%s%n", "org_" + "0" * 26, "00000000-0000-0000-0000-000000000000", "INR", "USD",
    "2024-01-01T00:00:00Z", "a" * 300,
])


def text() -> st.SearchStrategy[str]:
    return st.one_of(
        _SPECIAL_TEXT,
        st.text(_CHARACTERS, max_size=40),
        st.uuids().map(str),
        # Long text, cheaply: a short piece repeated up to LONG_TEXT_MAX characters.
        st.tuples(st.text(_CHARACTERS, min_size=1, max_size=3), st.integers(1_000, LONG_TEXT_MAX)).map(
            lambda piece_size: (piece_size[0] * piece_size[1])[: piece_size[1]]
        ),
    )


def binary() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=40),
        st.integers(1_000, LONG_TEXT_MAX).map(lambda size: b"\xff" * size),
    )


def integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    extremes = sorted({lo, hi, 0, 1, min(hi, 2**31 - 1), max(lo, -1) if lo < 0 else 1, hi - 1, lo + 1})
    return st.one_of(st.sampled_from(extremes), st.integers(lo, hi), st.integers(max(lo, -1000), min(hi, 1000)))


def floats(width: int) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.0, -0.0, float("nan"), float("inf"), float("-inf"), 1e308, -1e308, 5e-324]),
                     st.floats(width=width))


def enums(descriptor: EnumDescriptor) -> st.SearchStrategy[int]:
    known = [value.number for value in descriptor.values]
    return st.one_of(st.sampled_from(known), integers(*INT32))  # proto3 enums are open: unknown numbers pass


def _timestamp(cls: type[Message]) -> st.SearchStrategy[Message]:
    # Valid Timestamps lie in 0001-01-01..9999-12-31 (-62135596800..253402300799) with nanos 0..999999999; the
    # wire carries any int64/int32, and a client may send those.
    seconds = st.one_of(st.sampled_from([0, -1, -62135596800, -62135596801, 253402300799, 253402300800,
                                         1_700_000_000, *INT64]), st.integers(-62135596800, 253402300799),
                        st.integers(*INT64))
    nanos = st.one_of(st.sampled_from([0, 999_999_999, 1_000_000_000, -1, *INT32]), st.integers(*INT32))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def _duration(cls: type[Message]) -> st.SearchStrategy[Message]:
    seconds = st.one_of(st.sampled_from([0, 1, -1, 315_576_000_000, 315_576_000_001, *INT64]), st.integers(*INT64))
    nanos = st.one_of(st.sampled_from([0, 999_999_999, -999_999_999, 1_000_000_000, *INT32]), st.integers(*INT32))
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


_WELL_KNOWN = {"google.protobuf.Timestamp": _timestamp, "google.protobuf.Duration": _duration}


def _scalar(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text()
    if kind == FieldDescriptor.TYPE_BYTES:
        return binary()
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return floats(64)
    if kind == FieldDescriptor.TYPE_FLOAT:
        return floats(32)
    if kind == FieldDescriptor.TYPE_ENUM:
        return enums(field.enum_type)
    if kind in _INT_RANGES:
        return integers(*_INT_RANGES[kind])
    if kind in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        return messages(field.message_type, depth=depth - 1)
    raise TypeError(f"no strategy for field {field.full_name} of type {kind}")


def _is_map(field: FieldDescriptor) -> bool:
    return (field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
            and field.is_repeated)


def _field(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """A value for ``field`` (what the message's constructor takes), or None to leave it unset."""
    if _is_map(field):
        key = _scalar(field.message_type.fields_by_name["key"], depth)
        value = _scalar(field.message_type.fields_by_name["value"], depth)
        return st.dictionaries(key, value, max_size=MAX_REPEATED)
    if field.is_repeated:
        if field.type == FieldDescriptor.TYPE_MESSAGE and depth <= 0:
            return st.just([])
        return st.lists(_scalar(field, depth), max_size=MAX_REPEATED)
    if field.type == FieldDescriptor.TYPE_MESSAGE and depth <= 0:
        return st.none()
    return _scalar(field, depth)


def messages(descriptor: Descriptor, *, depth: int = 3) -> st.SearchStrategy[Message]:
    """Instances of the message ``descriptor`` describes, nested messages down to ``depth`` levels; each field is
    set or left unset, and at most one field of each oneof is set."""
    cls = message_factory.GetMessageClass(descriptor)
    if descriptor.full_name in _WELL_KNOWN:
        return _WELL_KNOWN[descriptor.full_name](cls)
    real_oneofs = [oneof for oneof in descriptor.oneofs
                   if not (len(oneof.fields) == 1 and oneof.name == "_" + oneof.fields[0].name)]  # proto3 optional
    in_oneof = {field.name for oneof in real_oneofs for field in oneof.fields}
    plain = {field.name: st.one_of(st.none(), _field(field, depth))
             for field in descriptor.fields if field.name not in in_oneof}
    choices = [
        st.one_of(st.none(), *[_field(field, depth).map(lambda value, name=field.name: (name, value))
                               for field in oneof.fields])
        for oneof in real_oneofs
    ]

    def build(values: dict[str, Any], chosen: list[tuple[str, Any] | None]) -> Message:
        kwargs = {name: value for name, value in values.items() if value is not None}
        kwargs.update(choice for choice in chosen if choice is not None and choice[1] is not None)
        return cls(**kwargs)

    return st.builds(build, st.fixed_dictionaries(plain), st.tuples(*choices).map(list))
