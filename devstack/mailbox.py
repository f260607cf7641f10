"""The local mailbox (``python -m sandboxes.smtp``) as a process of the local stack.

``make run`` starts it unless an SMTP server is configured (``NOTIFICATION_SMTP_HOST``), and points the
notification service at it, so the invoice emails of the demo can be read in a browser instead of going anywhere.
Its messages are kept in the data directory, so a restart keeps them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from devstack import console
from devstack.console import Reporter
from devstack.local_sandbox import start_child, stop_recorded_child
from devstack.mesh import REPO_ROOT
from devstack.ports import LOCALHOST, pick_port
from devstack.processes import read_record, reclaim

DEFAULT_SMTP_PORT = 1025  # the port local mail catchers use, so tools people already have point here
DEFAULT_WEB_PORT = 8025
REAL_SMTP_ENV = "NOTIFICATION_SMTP_HOST"


def real_smtp_configured() -> bool:
    return bool(os.environ.get(REAL_SMTP_ENV, "").strip())


class LocalMailbox:
    def __init__(self, data_dir: Path, *, smtp_port: int = DEFAULT_SMTP_PORT, web_port: int = DEFAULT_WEB_PORT,
                 say: Reporter = console.say, start_timeout: float = 30.0, python: str = sys.executable,
                 keep_state: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        # Without it the mail is kept in memory only: the benchmark's thousands of messages would otherwise
        # rewrite the store's index once each.
        self.keep_state = keep_state
        self.store_dir = self.data_dir / "mailbox"
        self.smtp_port = smtp_port
        self.web_port = web_port
        self.log_path = self.data_dir / "mailbox.log"
        self._record = self.data_dir / "mailbox.pid"
        self._say = say
        self._start_timeout = start_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def smtp_address(self) -> str:
        return f"{LOCALHOST}:{self.smtp_port}"

    @property
    def url(self) -> str:
        """The page a person reads the mail on."""
        return f"http://{LOCALHOST}:{self.web_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def notification_env(self) -> dict[str, str]:
        return {"NOTIFICATION_SMTP_HOST": LOCALHOST, "NOTIFICATION_SMTP_PORT": str(self.smtp_port),
                "NOTIFICATION_SMTP_SECURITY": "none", "NOTIFICATION_MAILBOX_URL": self.url}

    def endpoints(self) -> dict[str, str]:
        return {"smtp": self.smtp_address, "web": self.url}

    def _pick_ports(self) -> None:
        # Both chosen here rather than with port 0 in the child: the notification service's environment is
        # written before it starts, and the banner names the ports.
        for attribute, what in (("smtp_port", "SMTP"), ("web_port", "web page")):
            preferred = getattr(self, attribute)
            chosen = pick_port(preferred)
            setattr(self, attribute, chosen)
            if preferred and preferred != chosen:
                self._say(f"port {preferred} is taken; the mailbox's {what} will use {chosen}")

    def start(self) -> LocalMailbox:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        record = read_record(self._record)
        if record is not None:
            reclaim(record.pid, record.owner, ["sandboxes.smtp", str(self.store_dir)], "mailbox", self._say,
                    timeout=10)
        self._pick_ports()
        command = [self._python, "-m", "sandboxes.smtp", "--host", LOCALHOST, "--smtp-port", str(self.smtp_port),
                   "--http-port", str(self.web_port)]
        if self.keep_state:
            command += ["--store-dir", str(self.store_dir)]
        # The child takes its settings from the flags alone: SMTP_SANDBOX_* left in the shell must not add AUTH
        # the notification service is not told about.
        env = {key: value for key, value in os.environ.items() if not key.startswith("SMTP_SANDBOX_")}
        env["PYTHONUNBUFFERED"] = "1"
        self._process = start_child(command, env=env, cwd=REPO_ROOT, log_path=self.log_path, record=self._record,
                                    ports=(self.smtp_port, self.web_port), timeout=self._start_timeout,
                                    what="the mailbox")
        self._say(f"mailbox at {self.url}, SMTP {self.smtp_address} (pid {self._process.pid}, log: {self.log_path})")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_recorded_child(process, self._record)
