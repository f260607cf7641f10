"""Staff tokens and users: the token's shape and hash, rotation's expiry, and what a user may be created with."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.gateway.domain import credentials as cred
from services.gateway.domain.access import Role

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_a_minted_token_is_found_by_its_prefix_and_proven_by_its_hash():
    minted = cred.mint_token()
    assert cred.token_prefix_of(minted.secret) == minted.prefix and minted.prefix.startswith("bt_")
    token = cred.Token(id="tok_1", user_id="usr_1", name="t", prefix=minted.prefix, secret_hash=minted.secret_hash,
                       created_at=NOW)
    assert cred.token_matches(token, minted.secret)
    assert not cred.token_matches(token, minted.secret[:-1] + ("a" if minted.secret[-1] != "a" else "b"))
    assert cred.token_prefix_of("bk_AbCdEfGh_" + "x" * 32) is None  # a project key is not a staff token


def test_token_states():
    token = cred.Token(id="t", user_id="u", name="n", prefix="p", secret_hash="h", created_at=NOW,
                       expires_at=NOW + timedelta(hours=1))
    assert token.state(NOW) is cred.TokenState.ACTIVE
    assert token.state(NOW + timedelta(hours=1)) is cred.TokenState.EXPIRED
    assert replace(token, revoked_at=NOW).state(NOW) is cred.TokenState.REVOKED


@given(
    expiry=st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400))),
    overlap=st.timedeltas(min_value=timedelta(0), max_value=cred.MAX_ROTATION_OVERLAP),
)
def test_a_rotated_token_never_outlives_the_overlap_nor_its_own_expiry(expiry, overlap):
    current = None if expiry is None else NOW + expiry
    end = cred.rotation_expiry(current, NOW, overlap)
    assert end <= NOW + overlap
    assert current is None or end <= current


def test_overlaps_beyond_the_bounds_are_refused():
    with pytest.raises(InvalidArgument):
        cred.rotation_expiry(None, NOW, cred.MAX_ROTATION_OVERLAP + timedelta(seconds=1))


def test_users_are_validated_and_normalised():
    assert cred.validate_user(" Asha@Example.COM ", " Asha ", "viewer") == ("asha@example.com", "Asha", Role.VIEWER)
    for email, name, role, field in [("no-at-sign", "A", "viewer", "email"), ("a@b.c", "", "viewer", "name"),
                                     ("a@b.c", "A", "root", "role"), ("a@b.c", "A" * 101, "viewer", "name")]:
        with pytest.raises(InvalidArgument) as refused:
            cred.validate_user(email, name, role)
        assert refused.value.field == field


def test_a_tokens_ranges_are_normalised_and_bad_ones_named():
    assert cred.validate_cidrs([" 10.1.2.3/8", "2001:db8::1", "192.168.0.7"]) == (
        "10.0.0.0/8", "2001:db8::1/128", "192.168.0.7/32")
    with pytest.raises(InvalidArgument) as refused:
        cred.validate_cidrs(["10.0.0.0/8", "not-a-range"])
    assert refused.value.field == "allowed_cidrs[1]"
    with pytest.raises(InvalidArgument):
        cred.validate_cidrs(["10.0.0.0/8"] * (cred.MAX_ALLOWED_CIDRS + 1))
