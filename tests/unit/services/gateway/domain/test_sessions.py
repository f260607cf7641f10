"""People's sign-in rules: the password policy, the session's lifetime and CSRF token, and TOTP's window and
replay rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_runtime.errors import InvalidArgument
from services.gateway.domain import sessions as sess

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
POLICY = sess.SessionPolicy(idle=timedelta(minutes=30), lifetime=timedelta(hours=12))
EMAIL = "asha@example.com"


@given(st.text(min_size=12, max_size=256).filter(lambda p: p.strip().lower() != EMAIL))
def test_a_password_of_12_to_256_characters_other_than_the_email_is_accepted(password):
    assert sess.validate_password(password, EMAIL) == password


@given(st.one_of(st.text(max_size=11), st.text(min_size=257, max_size=400)))
def test_a_password_too_short_or_too_long_is_refused_naming_the_field(password):
    with pytest.raises(InvalidArgument) as refused:
        sess.validate_password(password, EMAIL, field="new_password")
    assert refused.value.field == "new_password" and "12 to 256" in str(refused.value)


@given(st.sampled_from(["Asha@Example.com", " asha@example.com ", "ASHA@EXAMPLE.COM"]))
def test_the_email_is_no_password_whatever_its_case(password):
    with pytest.raises(InvalidArgument, match="email"):
        sess.validate_password(password, EMAIL)


def _codes(secret: int):
    """A stand-in for RFC 6238: a distinct 6-digit code per (secret, step)."""
    return lambda step: f"{(step * 7919 + secret) % 1_000_000:06d}"


@given(offset=st.integers(-1, 1), seconds=st.integers(0, 10**9), secret=st.integers(0, 10**6))
def test_a_code_of_the_current_step_or_either_neighbour_is_accepted_once(offset, seconds, secret):
    now = datetime.fromtimestamp(seconds, UTC)
    code_at = _codes(secret)
    step = sess.totp_step_of(now) + offset
    accepted = sess.accepted_totp_step(code_at(step), now, None, code_at)
    assert accepted == step
    # Used once: the same code (or any code of that step or before) is refused from then on.
    assert sess.accepted_totp_step(code_at(step), now, accepted, code_at) is None
    for earlier in range(sess.totp_step_of(now) - 1, step + 1):
        assert sess.accepted_totp_step(code_at(earlier), now, accepted, code_at) is None


@given(offset=st.integers(2, 10_000), seconds=st.integers(10**6, 10**9), sign=st.sampled_from([-1, 1]))
def test_a_code_two_steps_away_or_more_is_refused(offset, seconds, sign):
    now = datetime.fromtimestamp(seconds, UTC)
    code_at = _codes(42)
    code = code_at(sess.totp_step_of(now) + sign * offset)
    window = {code_at(sess.totp_step_of(now) + d) for d in (-1, 0, 1)}
    if code not in window:  # the stand-in's codes repeat every 10**6 steps
        assert sess.accepted_totp_step(code, now, None, code_at) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦"])
def test_a_code_must_be_six_ascii_digits(code):
    assert sess.accepted_totp_step(code, NOW, None, lambda step: code) is None


def test_a_session_ends_when_idle_at_its_lifetime_or_when_revoked():
    session = sess.Session(id_hash="h", user_id="usr_1", csrf_hash="c", created_at=NOW,
                           expires_at=NOW + POLICY.lifetime, last_seen_at=NOW)
    assert session.active(NOW + timedelta(minutes=29), POLICY)
    assert not session.active(NOW + timedelta(minutes=30), POLICY)
    seen_late = sess.Session(**{**session.__dict__, "last_seen_at": NOW + timedelta(hours=11, minutes=59)})
    assert seen_late.active(NOW + timedelta(hours=11, minutes=59, seconds=30), POLICY)
    assert not seen_late.active(NOW + timedelta(hours=12), POLICY), "sliding never passes the absolute lifetime"
    assert seen_late.idle_expires_at(POLICY) == NOW + POLICY.lifetime
    assert not sess.Session(**{**session.__dict__, "revoked_at": NOW}).active(NOW, POLICY)
    assert not session.needs_touch(NOW + timedelta(seconds=59)) and session.needs_touch(NOW + timedelta(minutes=1))


def test_the_csrf_token_belongs_to_its_session_and_is_checked_by_hash():
    first, second = sess.new_session_id(), sess.new_session_id()
    assert first != second and len(first) >= 43
    token = sess.csrf_token_of(first)
    assert token == sess.csrf_token_of(first) and token != sess.csrf_token_of(second)
    assert sess.csrf_matches(sess.hash_value(token), token)
    assert not sess.csrf_matches(sess.hash_value(token), "")
    assert not sess.csrf_matches(sess.hash_value(token), sess.csrf_token_of(second))


def test_a_tried_email_is_clipped_for_the_audit_log():
    assert sess.clip_email("a@b.example") == "a@b.example"
    assert len(sess.clip_email("x" * 10_000)) == sess.MAX_AUDITED_EMAIL_LENGTH
