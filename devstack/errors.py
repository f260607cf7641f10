"""The one error type the local runtime raises for problems an operator can act on."""

from __future__ import annotations


class DevstackError(RuntimeError):
    """A local server or service could not be started, reached or stopped; the message says what to look at."""
