"""Operator-facing output: one prefixed line per step, so progress is easy to scan in a busy terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable

Reporter = Callable[[str], None]

PREFIX = "[devstack]"


def _styled(text: str, code: str, stream) -> str:  # noqa: ANN001 - any text stream
    # Colour only a real terminal; logs and CI captures stay plain text.
    return f"\033[{code}m{text}\033[0m" if getattr(stream, "isatty", lambda: False)() else text


def say(message: str) -> None:
    """Print one progress line for the operator."""
    print(f"{_styled(PREFIX, '36', sys.stdout)} {message}", flush=True)


def warn(message: str) -> None:
    """Print something the operator must not miss (a process died, demo data could not be created ...)."""
    print(f"{_styled(PREFIX + ' !!!', '1;31', sys.stdout)} {message}", flush=True)
