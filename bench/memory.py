"""Peak resident memory of a process: VmHWM from /proc/<pid>/status (Linux), in MiB."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mib(pid: int) -> float | None:
    """The process's high-water mark of resident memory, or None if it is gone or /proc is not there."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None
