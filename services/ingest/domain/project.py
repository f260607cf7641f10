"""Projects: an organisation's sources of usage events, each with its own API keys."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

from billing_runtime.errors import InvalidArgument

_NAME = re.compile(r"[A-Za-z0-9][\w .\-]{0,99}")


@dataclass(frozen=True)
class Project:
    id: str
    organisation_id: str
    name: str
    created_at: datetime


def validate_project_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidArgument("is required", field="name")
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            "must be 1 to 100 letters, digits, spaces, '.', '-' or '_', starting with a letter or digit",
            field="name",
        )
    return name


def project_fingerprint(organisation_id: str, name: str) -> str:
    return hashlib.sha256(f"{organisation_id}\x00{name}".encode()).hexdigest()
