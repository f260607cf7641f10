"""People's passwords, hashed with argon2id (``argon2-cffi``, RFC 9106's low-memory profile: 64 MiB, 3 passes,
4 lanes). A hash made with other parameters still verifies, and is rehashed at the next sign-in. Hashing takes
a few hundred milliseconds of CPU on purpose, so it runs in a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_DUMMY_PASSWORD = "a password nobody has, to spend the same time on unknown emails"


class Argon2Passwords:
    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher.from_parameters(argon2.profiles.RFC_9106_LOW_MEMORY)
        # Verified against when the email is unknown (or has no password), so every failure costs one argon2 run.
        self._dummy_hash = self._hasher.hash(_DUMMY_PASSWORD)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` is the one hashed; a missing hash takes as long as a wrong password."""
        return await asyncio.to_thread(self._verify, password_hash, password)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
