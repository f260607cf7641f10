"""API keys: minting, prefixes, hashing, matching, state and request validation."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from billing_runtime.errors import InvalidArgument
from services.ingest.domain.api_key import (
    ApiKey,
    ApiKeyState,
    hash_secret,
    matches,
    mint_key,
    prefix_of,
    validate_key_request,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
KEY_FORMAT = re.compile(r"bk_[A-Za-z0-9]{8}_[A-Za-z0-9]{32}")


def _key(secret_hash: str = "0" * 64, **overrides: object) -> ApiKey:
    values: dict[str, object] = {
        "id": "key_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "project_id": "prj_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "name": "ci",
        "prefix": "bk_abcdefgh",
        "secret_hash": secret_hash,
        "created_at": NOW - timedelta(days=1),
    }
    values.update(overrides)
    return ApiKey(**values)  # type: ignore[arg-type]


class TestMint:
    def test_format(self) -> None:
        minted = mint_key()
        assert KEY_FORMAT.fullmatch(minted.secret), minted.secret
        assert len(minted.secret) == 3 + 8 + 1 + 32

    def test_prefix_is_the_start_of_the_secret(self) -> None:
        minted = mint_key()
        assert minted.prefix == minted.secret[:11]
        assert re.fullmatch(r"bk_[A-Za-z0-9]{8}", minted.prefix)

    def test_prefix_of_round_trips(self) -> None:
        for _ in range(50):
            minted = mint_key()
            assert prefix_of(minted.secret) == minted.prefix

    def test_stores_the_hash_not_the_secret(self) -> None:
        minted = mint_key()
        assert minted.secret_hash == hashlib.sha256(minted.secret.encode()).hexdigest()
        assert minted.secret_hash == hash_secret(minted.secret)
        assert minted.secret[12:] not in minted.secret_hash
        assert minted.secret_hash != minted.secret

    def test_many_mints_are_unique(self) -> None:
        minted = [mint_key() for _ in range(2000)]
        assert len({m.secret for m in minted}) == 2000
        assert len({m.prefix for m in minted}) == 2000
        assert len({m.secret_hash for m in minted}) == 2000

    def test_uses_the_whole_alphabet(self) -> None:
        # 2000 * 40 random characters from 62 symbols: every letter case and digit shows up.
        chars = set("".join(mint_key().secret[3:].replace("_", "") for _ in range(2000)))
        assert chars == set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


class TestPrefixOf:
    @pytest.mark.parametrize(
        "secret",
        [
            "",
            "bk_",
            "bk_abcdefgh",
            "bk_abcdefgh_" + "a" * 31,
            "bk_abcdefgh_" + "a" * 33,
            "bk_abcdefg_" + "a" * 33,
            "sk_abcdefgh_" + "a" * 32,
            "BK_abcdefgh_" + "a" * 32,
            "bk-abcdefgh-" + "a" * 32,
            "bk_abcd-fgh_" + "a" * 32,
            "bk_abcdefgh_" + "a" * 31 + "!",
            " bk_abcdefgh_" + "a" * 32,
            "bk_abcdefgh_" + "a" * 31 + "\u00e9",
        ],
    )
    def test_malformed_is_none(self, secret: str) -> None:
        assert prefix_of(secret) is None

    def test_trailing_newline_is_none(self) -> None:
        # No minted key ends in a newline, yet `$` in the pattern matches before one.
        assert prefix_of("bk_abcdefgh_" + "a" * 32 + "\n") is None

    def test_well_formed(self) -> None:
        assert prefix_of("bk_AbCd1234_" + "Z9" * 16) == "bk_AbCd1234"


class TestMatches:
    def test_right_secret(self) -> None:
        minted = mint_key()
        assert matches(_key(minted.secret_hash), minted.secret) is True

    def test_wrong_secrets(self) -> None:
        minted = mint_key()
        key = _key(minted.secret_hash)
        other = mint_key()
        assert matches(key, other.secret) is False
        assert matches(key, "") is False
        assert matches(key, minted.secret_hash) is False
        assert matches(key, minted.secret + " ") is False
        assert matches(key, minted.secret[:-1]) is False
        assert matches(key, minted.prefix) is False
        flipped = minted.secret[:-1] + ("a" if minted.secret[-1] != "a" else "b")
        assert matches(key, flipped) is False


class TestState:
    def test_active_without_expiry(self) -> None:
        assert _key().state(NOW) is ApiKeyState.ACTIVE

    def test_active_before_expiry(self) -> None:
        assert _key(expires_at=NOW + timedelta(microseconds=1)).state(NOW) is ApiKeyState.ACTIVE

    def test_expired_at_the_expiry_instant(self) -> None:
        assert _key(expires_at=NOW).state(NOW) is ApiKeyState.EXPIRED

    def test_expired_after_expiry(self) -> None:
        assert _key(expires_at=NOW - timedelta(days=1)).state(NOW) is ApiKeyState.EXPIRED

    def test_revoked(self) -> None:
        assert _key(revoked_at=NOW - timedelta(hours=1)).state(NOW) is ApiKeyState.REVOKED

    def test_revoked_wins_over_expired(self) -> None:
        key = _key(expires_at=NOW - timedelta(days=2), revoked_at=NOW - timedelta(days=1))
        assert key.state(NOW) is ApiKeyState.REVOKED

    def test_revoked_with_future_expiry(self) -> None:
        key = _key(expires_at=NOW + timedelta(days=2), revoked_at=NOW - timedelta(days=1))
        assert key.state(NOW) is ApiKeyState.REVOKED

    def test_state_values(self) -> None:
        assert [s.value for s in ApiKeyState] == ["active", "expired", "revoked"]


class TestValidateKeyRequest:
    def test_trims_name(self) -> None:
        assert validate_key_request("  ci runner \n", None, NOW) == "ci runner"

    def test_empty_name_allowed(self) -> None:
        assert validate_key_request("   ", None, NOW) == ""

    def test_name_at_maximum_length(self) -> None:
        assert validate_key_request("  " + "n" * 100 + "  ", None, NOW) == "n" * 100

    def test_name_too_long(self) -> None:
        with pytest.raises(InvalidArgument) as raised:
            validate_key_request("n" * 101, None, NOW)
        assert raised.value.field == "name"
        assert raised.value.message == "must be at most 100 characters"

    def test_future_expiry(self) -> None:
        assert validate_key_request("ci", NOW + timedelta(seconds=1), NOW) == "ci"

    @pytest.mark.parametrize("expires_at", [NOW, NOW - timedelta(microseconds=1), NOW - timedelta(days=30)])
    def test_expiry_not_in_future(self, expires_at: datetime) -> None:
        with pytest.raises(InvalidArgument) as raised:
            validate_key_request("ci", expires_at, NOW)
        assert raised.value.field == "expire_time"
        assert raised.value.message == "must be in the future"
