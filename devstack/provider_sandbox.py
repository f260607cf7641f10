"""A local stand-in for a payment provider (the Razorpay sandbox, the local Stripe) as a process of the local stack:
keys made up once and kept (0600) in the data directory, a ``python -m sandboxes.<name>`` child on a free port that
sends its signed webhooks to the gateway, and the settings that point payments and the gateway at it. Each
provider's subclass says only what differs (``razorpay_sandbox.py``, ``stripe_sandbox.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import ClassVar, Self

from devstack import console
from devstack.console import Reporter
from devstack.local_sandbox import start_child, stop_recorded_child
from devstack.mesh import REPO_ROOT
from devstack.ports import LOCALHOST, pick_port
from devstack.processes import read_record, reclaim
from devstack.state import write_private


class ProviderSandbox:
    # What differs per provider.
    title: ClassVar[str]  # "the Razorpay sandbox", in messages
    module: ClassVar[str]  # "sandboxes.razorpay"
    files: ClassVar[str]  # the stem of its files in the data directory: "razorpay-sandbox"
    state_suffix: ClassVar[str]  # its saved objects: ".json"
    default_port: ClassVar[int]

    def __init__(self, data_dir: Path, webhook_url: str, *, port: int | None = None, say: Reporter = console.say,
                 start_timeout: float = 30.0, python: str = sys.executable, keep_state: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        # Off for throwaway stacks (the benchmark): state rewritten whole on every change would cost O(n^2) writes.
        self.keep_state = keep_state
        self.webhook_url = webhook_url
        self.port = self.default_port if port is None else port
        self.log_path = self.data_dir / f"{self.files}.log"
        self._record = self.data_dir / f"{self.files}.pid"
        self._say = say
        self._start_timeout = start_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self.keys = self._keys()

    def new_keys(self) -> dict[str, str]:
        """The provider's keys and webhook secret, made up (kept once made)."""
        raise NotImplementedError

    def child_env(self) -> dict[str, str]:
        """What the sandbox process is told of its keys."""
        raise NotImplementedError

    def payments_env(self) -> dict[str, str]:
        """Payments' settings that point it at the sandbox."""
        raise NotImplementedError

    def gateway_env(self) -> dict[str, str]:
        """The gateway's settings that verify the sandbox's webhooks."""
        raise NotImplementedError

    def _keys(self) -> dict[str, str]:
        path = self.data_dir / f"{self.files}-keys.json"
        if path.exists():
            return json.loads(path.read_text())
        keys = self.new_keys()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(keys) + "\n")
        return keys

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        record = read_record(self._record)
        if record is not None:
            reclaim(record.pid, record.owner, [self.module], self.title, self._say, timeout=10)
        preferred, self.port = self.port, pick_port(self.port)
        if preferred and preferred != self.port:
            self._say(f"port {preferred} is taken; {self.title} will use {self.port}")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.child_env()}
        command = [self._python, "-m", self.module, "--host", LOCALHOST, "--port", str(self.port),
                   "--webhook-url", self.webhook_url]
        if self.keep_state:
            command += ["--state-file", str(self.data_dir / f"{self.files}{self.state_suffix}")]
        self._process = start_child(command, env=env, cwd=REPO_ROOT, log_path=self.log_path, record=self._record,
                                    ports=(self.port,), timeout=self._start_timeout, what=self.title)
        self._say(f"{self.title[0].upper()}{self.title[1:]} at {self.url} (pid {self._process.pid}, "
                  f"log: {self.log_path})")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_recorded_child(process, self._record)
