"""Files the local runtime keeps between runs: the admin token, the gateway's secrets key, and ``endpoints.json``
describing a running stack."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from devstack.console import Reporter

ADMIN_TOKEN_ENV = "BILLING_ADMIN_TOKEN"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600: these files hold tokens and API key secrets."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def admin_token(data_dir: Path, say: Reporter) -> str:
    """``$BILLING_ADMIN_TOKEN`` if set, else the token saved in ``<data>/admin_token`` (generated on first use)."""
    from_env = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
    if from_env:
        say(f"admin token: from ${ADMIN_TOKEN_ENV}")
        return from_env
    path = data_dir / "admin_token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    say(f"generated an admin token; saved to {path} (mode 0600)")
    return token


def new_secrets_key() -> str:
    """A key for the gateway's ``GATEWAY_SECRETS_KEY``: 32 random bytes in URL-safe base64."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def gateway_secrets_key(data_dir: Path, say: Reporter) -> str:
    """The key the gateway seals TOTP secrets with, saved in ``<data>/gateway-secrets-key`` (generated on first use).
    Kept between runs like the database it protects: with a new key, the secrets sealed before would not open."""
    path = data_dir / "gateway-secrets-key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    key = new_secrets_key()
    write_private(path, key + "\n")
    say(f"generated the gateway's secrets key; saved to {path} (mode 0600)")
    return key


def write_endpoints(path: Path, endpoints: dict[str, Any]) -> None:
    """Write ``endpoints.json`` (0600: it contains the admin token) for tools and people to find the stack."""
    write_private(path, json.dumps(endpoints, indent=2) + "\n")
