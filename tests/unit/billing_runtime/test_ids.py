"""Time-ordered prefixed ids (ULIDs in Crockford base32)."""

from __future__ import annotations

import re
import time
import types

import pytest

from billing_runtime import ids

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_FORMAT = re.compile(r"org_[0-9A-HJKMNP-TV-Z]{26}")


def _decode(ulid: str) -> int:
    value = 0
    for char in ulid:
        value = value * 32 + CROCKFORD.index(char)
    return value


def _freeze(monkeypatch: pytest.MonkeyPatch, seconds: float, random: bytes) -> None:
    monkeypatch.setattr(ids, "time", types.SimpleNamespace(time=lambda: seconds))
    monkeypatch.setattr(ids, "os", types.SimpleNamespace(urandom=lambda n: random[:n]))


def test_format() -> None:
    value = ids.new_id("org")
    assert ID_FORMAT.fullmatch(value), value
    assert value[4] in "01234567"  # 128 bits in 130: the first character carries at most 3 bits


def test_prefix_is_kept() -> None:
    assert ids.new_id("evt").startswith("evt_")
    assert len(ids.new_id("key")) == 4 + 26


def test_encodes_milliseconds_then_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    random = bytes(range(1, 11))
    _freeze(monkeypatch, 1_700_000_000.123, random)
    value = _decode(ids.new_ulid())
    assert value >> 80 == 1_700_000_000_123
    assert value & ((1 << 80) - 1) == int.from_bytes(random, "big")


def test_zero_encodes_to_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze(monkeypatch, 0.0, bytes(10))
    assert ids.new_ulid() == "0" * 26


def test_time_and_randomness_fill_their_own_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    # 48 bits of time then 80 of randomness: the last 16 characters are the randomness alone.
    _freeze(monkeypatch, 0.0, b"\xff" * 10)
    assert ids.new_ulid() == "0" * 10 + "Z" * 16
    _freeze(monkeypatch, 0.001, bytes(10))
    assert ids.new_ulid() == "0" * 9 + "1" + "0" * 16


def test_later_millisecond_sorts_after_whatever_the_randomness(monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze(monkeypatch, 1_700_000_000.000, b"\xff" * 10)
    earlier = ids.new_id("org")
    _freeze(monkeypatch, 1_700_000_000.001, bytes(10))
    later = ids.new_id("org")
    assert earlier < later


def test_ids_from_later_milliseconds_sort_later() -> None:
    first = ids.new_id("org")
    time.sleep(0.002)
    second = ids.new_id("org")
    time.sleep(0.002)
    third = ids.new_id("org")
    assert first < second < third


def test_ten_thousand_ids_are_unique() -> None:
    generated = [ids.new_id("org") for _ in range(10_000)]
    assert len(set(generated)) == 10_000
