"""Starting and stopping a local stand-in for an outside provider (the Razorpay sandbox, the mailbox): a
``python -m sandboxes.<name>`` child in its own session, logging to a file, recorded so a later run can reclaim a
leftover, and up once every port it serves accepts connections."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.errors import DevstackError
from devstack.logs import tail
from devstack.ports import LOCALHOST, wait_for_tcp
from devstack.processes import stop_child, write_record


def start_child(command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, record: Path,
                ports: Sequence[int], timeout: float, what: str) -> subprocess.Popen[bytes]:
    """Start ``command`` and wait until ``ports`` accept connections; on failure stop it and raise with the end of
    its log."""
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=cwd, env=dict(env), start_new_session=True)
    write_record(record, process.pid)
    deadline = time.monotonic() + timeout
    for port in ports:
        while not wait_for_tcp(LOCALHOST, port, timeout=0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                stop_recorded_child(process, record)
                raise DevstackError(f"{what} did not start; last lines of {log_path}:\n" + tail(log_path, 20, offset))
    return process


def stop_recorded_child(process: subprocess.Popen[bytes] | None, record: Path) -> None:
    if process is None:
        return
    stop_child(process, sig=signal.SIGTERM, timeout=10, group=True)
    record.unlink(missing_ok=True)
