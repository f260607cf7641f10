"""Files the local runtime keeps between runs: the admin token, and ``endpoints.json`` describing a running stack."""

from __future__ import annotations

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


def write_endpoints(path: Path, endpoints: dict[str, Any]) -> None:
    """Write ``endpoints.json`` (0600: it contains the admin token) for tools and people to find the stack."""
    write_private(path, json.dumps(endpoints, indent=2) + "\n")
