"""The headless Chromium the dashboard's browser tests drive (Playwright through ``executable_path``): Debian's
``chromium`` package. ``python -m devstack.chromium`` (run by ``make test``) finds it, installs it through apt
when running as root, and otherwise stops with what to install: the browser tests never skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

# BILLING_CHROMIUM names a binary explicitly (another distribution's path, a Chrome build).
NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
WHAT_TO_INSTALL = (
    "the dashboard's browser tests need Chromium: install Debian's package as root "
    "(`sudo apt-get install -y chromium`; `chromium-browser` on Ubuntu), or set BILLING_CHROMIUM=/path/to/chromium"
)


def find() -> str | None:
    """The Chromium binary to drive, or None."""
    given = os.environ.get("BILLING_CHROMIUM", "")
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure(say=print) -> str:
    """Chromium's path, installing Debian's package first when missing and this is root; SystemExit naming what
    to install otherwise."""
    found = find()
    if found:
        return found
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        say("Chromium is missing: installing Debian's chromium package (apt-get install -y chromium)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        found = find()
        if found:
            return found
    raise SystemExit(f"error: {WHAT_TO_INSTALL}")


if __name__ == "__main__":
    print(f"Chromium for the browser tests: {ensure()}")
    sys.exit(0)
