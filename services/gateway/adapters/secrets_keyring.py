"""Secrets the gateway must read back (people's TOTP secrets) sealed at rest with AES-256-GCM (``cryptography``),
under the key of ``GATEWAY_SECRETS_KEY``; the keys of before a rotation (``GATEWAY_SECRETS_PREVIOUS_KEYS``) still
open what they sealed (docs/security.md, "TOTP secrets at rest").

A sealed value reads ``aesgcm1:<key id>:<base64url of nonce, ciphertext and tag>``. The key id (8 hex digits of a
SHA-256 of the key, which tells nothing about the key) says which key opens it, so opening never tries keys in
turn, and a value sealed with a key that is gone is named as such. The associated data is where the value is stored
(column and row), so a sealed value copied into another user's row does not open there. A value without the
prefix was stored before secrets were sealed (a base32 TOTP secret has no ``:``): it is read as it is, reported as
not sealed with the current key, and sealed again by the gateway's housekeeping.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MARKER = "aesgcm1"
KEY_BYTES = 32
_NONCE_BYTES = 12  # GCM's standard nonce; random per value (a key seals far fewer than 2^32 values)


class SecretUnreadable(Exception):
    """A sealed value that no configured key opens: sealed with a key no longer configured, altered, or copied from
    elsewhere. A server-side problem (a missing key), not the caller's: it answers as an internal error."""


@dataclass(frozen=True)
class Opened:
    value: str
    # False for a value in plain text (stored before sealing) or sealed with a previous key: seal it again.
    current: bool


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"billing-gateway-secrets-key\0" + key).hexdigest()[:8]


class SecretsKeyring:
    """Seals with the current key; opens with the current key or any previous one."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        for key in (current, *previous):
            if len(key) != KEY_BYTES:
                raise ValueError(f"a secrets key is {KEY_BYTES} bytes, not {len(key)}")
        self._current_id = key_id(current)
        self._keys = {key_id(key): AESGCM(key) for key in (*previous, current)}

    @property
    def key_ids(self) -> tuple[str, list[str]]:
        """The current key's id and the previous keys' (not secret: what an operator checks a rotation with)."""
        return self._current_id, [kid for kid in self._keys if kid != self._current_id]

    @property
    def sealed_prefix(self) -> str:
        """How every value sealed with the current key begins (what the housekeeping need not seal again)."""
        return f"{MARKER}:{self._current_id}:"

    def seal(self, value: str, where: str) -> str:
        """``value`` sealed with the current key, bound to ``where`` it is stored (e.g. ``users.totp_secret:<id>``)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current_id].encrypt(nonce, value.encode(), where.encode())
        return self.sealed_prefix + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def open(self, stored: str, where: str) -> Opened:
        """The value ``stored`` at ``where``; raises :class:`SecretUnreadable` when no configured key opens it."""
        marker, _, rest = stored.partition(":")
        if marker != MARKER:
            return Opened(stored, current=False)
        kid, _, data = rest.partition(":")
        cipher = self._keys.get(kid)
        if cipher is None:
            raise SecretUnreadable(
                f"sealed with key {kid}, which is neither GATEWAY_SECRETS_KEY (key {self._current_id}) nor one of "
                "GATEWAY_SECRETS_PREVIOUS_KEYS"
            )
        try:
            raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
            value = cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], where.encode()).decode()
        except (InvalidTag, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise SecretUnreadable(f"does not open with key {kid}: altered, or copied from elsewhere") from None
        return Opened(value, current=kid == self._current_id)
