"""Sealing TOTP secrets at rest (AES-256-GCM): a round trip, a wrong or missing key refused by name, a value bound to
its row, key rotation (previous keys still open, new values use the current key), values from before sealing read
as they are, and keys checked at start-up without being echoed."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from services.gateway.adapters.secrets_keyring import SecretsKeyring, SecretUnreadable, key_id
from services.gateway.config import GatewaySettings

OLD, NEW, OTHER = os.urandom(32), os.urandom(32), os.urandom(32)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
WHERE = "gateway.users.totp_secret:usr_1"


def test_a_sealed_secret_opens_with_its_key_and_shows_nothing_of_the_secret():
    keyring = SecretsKeyring(NEW)
    sealed = keyring.seal(SECRET, WHERE)
    assert sealed.startswith(f"aesgcm1:{key_id(NEW)}:") and sealed.startswith(keyring.sealed_prefix)
    assert SECRET not in sealed and SECRET.lower() not in sealed.lower()
    assert keyring.seal(SECRET, WHERE) != sealed, "a fresh nonce each time"
    opened = keyring.open(sealed, WHERE)
    assert (opened.value, opened.current) == (SECRET, True)


def test_a_keyring_without_the_key_refuses_clearly_and_names_the_keys_not_the_key():
    sealed = SecretsKeyring(OLD).seal(SECRET, WHERE)
    with pytest.raises(SecretUnreadable, match=f"sealed with key {key_id(OLD)}, which is neither GATEWAY_SECRETS_KEY "
                                               f"\\(key {key_id(OTHER)}\\)") as refused:
        SecretsKeyring(OTHER).open(sealed, WHERE)
    assert base64.b64encode(OLD).decode() not in str(refused.value)


@pytest.mark.parametrize("change", ["altered", "another row", "truncated"])
def test_an_altered_or_moved_value_does_not_open(change):
    keyring = SecretsKeyring(NEW)
    sealed = keyring.seal(SECRET, WHERE)
    where = WHERE
    if change == "altered":
        last = sealed[-1]
        sealed = sealed[:-1] + ("A" if last != "A" else "B")
    elif change == "another row":
        where = "gateway.users.totp_secret:usr_2"  # copied into another user's row
    else:
        sealed = sealed[: len(keyring.sealed_prefix) + 5]
    with pytest.raises(SecretUnreadable, match=f"does not open with key {key_id(NEW)}"):
        keyring.open(sealed, where)


def test_after_a_rotation_previous_keys_still_open_and_new_values_use_the_current_key():
    before = SecretsKeyring(OLD).seal(SECRET, WHERE)
    rotated = SecretsKeyring(NEW, [OLD])
    opened = rotated.open(before, WHERE)
    assert (opened.value, opened.current) == (SECRET, False), "to be sealed again"
    assert rotated.key_ids == (key_id(NEW), [key_id(OLD)])
    after = rotated.seal(opened.value, WHERE)
    assert after.startswith(f"aesgcm1:{key_id(NEW)}:") and rotated.open(after, WHERE).current
    with pytest.raises(SecretUnreadable):
        SecretsKeyring(OLD).open(after, WHERE)  # a replica still on the old key alone cannot read it


def test_a_secret_stored_before_sealing_is_read_as_it_is_and_marked_for_sealing():
    opened = SecretsKeyring(NEW).open(SECRET, WHERE)
    assert (opened.value, opened.current) == (SECRET, False)


def test_a_key_is_32_bytes():
    with pytest.raises(ValueError, match="32 bytes, not 16"):
        SecretsKeyring(os.urandom(16))


def _settings(**values):
    return GatewaySettings(admin_token="x" * 16, database_url="postgresql://unused/unused", **values)


def test_keys_are_read_from_base64_in_either_alphabet_with_previous_ones_comma_separated():
    settings = _settings(secrets_key=base64.urlsafe_b64encode(NEW).decode(),
                         secrets_previous_keys=f" {base64.b64encode(OLD).decode()} ,{base64.b64encode(OTHER).decode()}")
    assert settings.secrets_keys() == (NEW, [OLD, OTHER])
    assert base64.b64encode(OLD).decode() not in repr(settings)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("secrets_key", "not base64 at all!", "is not base64"),
    ("secrets_key", base64.b64encode(b"k" * 24).decode(), "32 bytes in base64, not 24"),
    ("secrets_key", f"{base64.b64encode(NEW).decode()},{base64.b64encode(OLD).decode()}", "must be one key"),
    ("secrets_key", "", "must be one key"),
    ("secrets_previous_keys", base64.b64encode(b"k" * 31).decode(), "not 31"),
])
def test_a_bad_key_stops_the_start_without_being_echoed(field, value, message):
    values = {"secrets_key": base64.b64encode(NEW).decode(), field: value}
    with pytest.raises(ValidationError, match=message) as refused:
        _settings(**values)
    assert not value or value not in str(refused.value)


def test_the_key_is_required(monkeypatch):
    for name in ("GATEWAY_SECRETS_KEY", "GATEWAY_SECRETS_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="secrets_key"):
        _settings()
