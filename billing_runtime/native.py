"""Loading the small C libraries ``make protos`` builds into ``gen/native/`` (ingest's event scanner, metering's
event decoder). Each has a pure-Python twin, so a missing library (no C compiler where the code was built) is
a warning and a slower path, never a failure."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from billing_runtime.logging import get_logger

log = get_logger(__name__)


def library_path(file_name: str, override_env: str) -> Path:
    """``gen/native/<file_name>``, or the path in ``$<override_env>`` when set."""
    configured = os.environ.get(override_env)
    if configured:
        return Path(configured)
    import billing  # the generated package in gen/

    return Path(billing.__file__).resolve().parent.parent / "native" / file_name


def load_library(file_name: str, override_env: str, fallback: str) -> ctypes.CDLL | None:
    """The library, or None (logged with what happens instead, ``fallback``) when it cannot be loaded."""
    path = library_path(file_name, override_env)
    try:
        return ctypes.CDLL(str(path))
    except OSError as error:
        log.warning(f"native library not available; {fallback}", path=str(path), error=str(error))
        return None
