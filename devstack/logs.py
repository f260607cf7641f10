"""Log files of the processes we start: the tail shown when something fails, and optional echo to the terminal."""

from __future__ import annotations

import json
import sys
import threading
from collections import deque
from pathlib import Path

ECHO_MODES = ("none", "errors", "all")
_LOUD_LEVELS = {"warning", "error", "critical", "exception", "fatal"}


def tail(path: Path, lines: int = 40, start_offset: int = 0) -> str:
    """The last ``lines`` lines of ``path`` after byte ``start_offset`` (where the current run began)."""
    try:
        with path.open("rb") as handle:
            handle.seek(start_offset)
            kept = deque(handle, maxlen=lines)
    except OSError as error:
        return f"(cannot read {path}: {error})"
    text = b"".join(kept).decode(errors="replace").rstrip()
    return text or f"({path} is empty)"


def render_line(line: str) -> str:
    """A JSON log line as ``level event key=value ...``; anything else unchanged."""
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    level = str(record.pop("level", "")).upper()
    event = record.pop("event", "")
    for noise in ("timestamp", "service"):
        record.pop(noise, None)
    exception = record.pop("exception", None)
    fields = " ".join(f"{key}={value}" for key, value in record.items())
    rendered = f"{level:<7} {event} {fields}".rstrip()
    return f"{rendered}\n{exception}" if exception else rendered


def is_loud(line: str) -> bool:
    """Lines worth showing in ``errors`` mode: warnings and errors, and non-JSON output such as tracebacks."""
    try:
        record = json.loads(line)
    except ValueError:
        return bool(line.strip())
    return not isinstance(record, dict) or str(record.get("level", "")).lower() in _LOUD_LEVELS


class LogFollower:
    """Echo new lines of the services' log files to the terminal, prefixed with the service name.

    The children write straight to their files (so they keep running and logging if we die); this thread
    follows the files, like ``tail -f``, from where they ended when it was created.
    """

    def __init__(self, files: dict[str, Path], mode: str = "errors", interval: float = 0.25) -> None:
        if mode not in ECHO_MODES:
            raise ValueError(f"mode must be one of {ECHO_MODES}, got {mode!r}")
        self._files = dict(files)
        self._mode = mode
        self._interval = interval
        self._offsets = {name: _size(path) for name, path in self._files.items()}
        self._partial: dict[str, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devstack-log-follower", daemon=True)
        self._width = max((len(name) for name in self._files), default=0)

    def start(self) -> LogFollower:
        """Start following (a no-op in mode ``none``)."""
        if self._mode != "none":
            self._thread.start()
        return self

    def stop(self) -> None:
        """Print what is left and stop following."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._poll()
        self._poll()

    def _poll(self) -> None:
        for name, path in self._files.items():
            size = _size(path)
            offset = self._offsets[name]
            if size < offset:  # truncated or replaced: start over
                offset = 0
            if size == offset:
                continue
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read(size - offset)
            except OSError:
                continue
            self._offsets[name] = offset + len(chunk)
            data = self._partial.pop(name, b"") + chunk
            *complete, rest = data.split(b"\n")
            if rest:
                self._partial[name] = rest
            for raw in complete:
                line = raw.decode(errors="replace")
                if self._mode == "all" or is_loud(line):
                    self._print(name, line)

    def _print(self, name: str, line: str) -> None:
        prefix = f"{name:>{self._width}} |"
        for part in render_line(line).splitlines() or [""]:
            print(f"{prefix} {part}", file=sys.stdout, flush=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
