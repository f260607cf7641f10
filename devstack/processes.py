"""Child process plumbing shared by PostgreSQL, NATS and the services: stopping in stages, pid files, and
cleaning up servers left running by a previous run that was killed before it could stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.console import Reporter
from devstack.errors import DevstackError


def _proc_stat_state(pid: int) -> str | None:
    """The state letter from /proc/<pid>/stat, or None when the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "?"
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int) -> bool:
    """True if ``pid`` is a live process. A zombie counts as dead: it holds no port, file or lock any more."""
    if pid <= 0:
        return False
    if Path("/proc").is_dir():
        state = _proc_stat_state(pid)
        return state is not None and state not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_is_zombie(pid: int) -> bool:
    """True if ``pid`` exited but nobody reaped it (an orphan in a container whose init does not reap)."""
    return _proc_stat_state(pid) == "Z"


def command_line(pid: int) -> str:
    """The process's command line joined by spaces, or "" if it cannot be read."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Poll until a process that is not our child is gone; False on timeout."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def read_pid(pid_file: Path) -> int | None:
    """The pid on the first line of ``pid_file`` (postmaster.pid, our process records), if any."""
    try:
        first = pid_file.read_text().splitlines()[0].strip()
        return int(first)
    except (OSError, IndexError, ValueError):
        return None


def process_identity(pid: int) -> str | None:
    """``<pid>:<start time>``: names one process for good, unlike a pid, which the kernel recycles."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{pid}:{stat.rsplit(')', 1)[1].split()[19]}"


def identity_alive(identity: str) -> bool:
    """True if the process named by :func:`process_identity` still runs (not a newer one with its pid)."""
    pid, _, _ = identity.partition(":")
    return pid.isdigit() and pid_alive(int(pid)) and process_identity(int(pid)) == identity


@dataclass(frozen=True)
class ProcessRecord:
    """A server or service we started (``pid``) and the devstack process that owns it (``owner``)."""

    pid: int
    owner: str | None

    def owner_alive(self) -> bool:
        return self.owner is not None and identity_alive(self.owner)


def write_record(path: Path, pid: int) -> None:
    """Record that this process started ``pid``, so a later run can tell a leftover from a server in use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n{process_identity(os.getpid()) or os.getpid()}\n")


def read_record(path: Path) -> ProcessRecord | None:
    """The record written by :func:`write_record`, if readable."""
    pid = read_pid(path)
    if pid is None:
        return None
    lines = path.read_text().splitlines()
    return ProcessRecord(pid=pid, owner=lines[1].strip() if len(lines) > 1 and lines[1].strip() else None)


def reclaim(
    pid: int | None,
    owner: str | None,
    markers: list[str],
    what: str,
    say: Reporter,
    *,
    sig: int = signal.SIGTERM,
    timeout: float = 15.0,
    if_owned: str = "raise",
) -> bool:
    """Deal with a process a previous run may have left on our data directory; True if one was stopped.

    Only a live process whose command line contains every one of ``markers`` (binary or module, data
    directory) counts, so a recycled pid is never signalled. If the devstack process that started it
    (``owner``) still runs, the data directory is in use: raise (``if_owned="raise"``) or leave it alone
    (``"skip"``). Otherwise it is a leftover of a run that was killed before it could stop it: stop it.
    """
    if pid is None or pid == os.getpid() or not pid_alive(pid):
        return False
    cmdline = command_line(pid)
    if not cmdline or not all(marker in cmdline for marker in markers):
        return False
    if owner is not None and identity_alive(owner):
        if if_owned == "skip":
            return False
        owner_pid = int(owner.partition(":")[0])
        raise DevstackError(
            f"{what} (pid {pid}) is still in use by a running devstack (pid {owner_pid}: "
            f"{command_line(owner_pid)[:100]}); stop that one first, or use another data directory"
        )
    say(f"stopping a leftover {what} from a previous run: pid {pid} ({cmdline[:110]})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if not wait_pid_gone(pid, timeout):
        say(f"pid {pid} did not stop within {timeout:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_pid_gone(pid, 5.0)
    return True


def stop_child(
    process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 15.0, group: bool = True
) -> int | None:
    """Stop our own child: ``sig``, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit code.

    With ``group`` the signal goes to the child's process group (children are started with
    ``start_new_session=True``, so the group is exactly the child and anything it spawned).
    """
    if process.poll() is not None:
        return process.returncode
    _signal(process, sig, group)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        _signal(process, signal.SIGKILL, group)
        try:
            return process.wait(10.0)
        except subprocess.TimeoutExpired:
            return None


def send_signal(process: subprocess.Popen[bytes], sig: int, *, group: bool = True) -> None:
    """Signal a child (or its process group) unless it already exited."""
    if process.poll() is None:
        _signal(process, sig, group)


def _signal(process: subprocess.Popen[bytes], sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        # The group may contain a process we may not signal; the leader itself is ours.
        process.send_signal(sig)
