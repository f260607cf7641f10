"""The local Razorpay sandbox (``python -m sandboxes.razorpay``) as a process of the local stack.

``make run`` starts it unless real Razorpay keys are configured (``PAYMENTS_RAZORPAY_KEY_ID``), and points
payments' API calls and the gateway's webhook secret at it, so a newcomer can pay the demo invoice in a
browser. Its keys are generated once and kept in the data directory with its objects (a restart keeps
orders and payments).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from devstack import console
from devstack.console import Reporter
from devstack.local_sandbox import start_child, stop_recorded_child
from devstack.mesh import REPO_ROOT
from devstack.ports import LOCALHOST, pick_port
from devstack.processes import read_record, reclaim
from devstack.state import write_private

DEFAULT_PORT = 8090
REAL_KEYS_ENV = "PAYMENTS_RAZORPAY_KEY_ID"
WEBHOOK_PATH = "/api/v1/webhooks/razorpay"


def real_keys_configured() -> bool:
    return bool(os.environ.get(REAL_KEYS_ENV, "").strip())


class LocalRazorpaySandbox:
    def __init__(self, data_dir: Path, webhook_url: str, *, port: int = DEFAULT_PORT, say: Reporter = console.say,
                 start_timeout: float = 30.0, python: str = sys.executable, keep_state: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        # Off for throwaway stacks (the benchmark): the state file is rewritten whole on every change, so
        # thousands of orders would cost the sandbox O(n^2) writes.
        self.keep_state = keep_state
        self.webhook_url = webhook_url
        self.port = port
        self.log_path = self.data_dir / "razorpay-sandbox.log"
        self._record = self.data_dir / "razorpay-sandbox.pid"
        self._say = say
        self._start_timeout = start_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self.keys = self._keys()

    def _keys(self) -> dict[str, str]:
        """The sandbox's key id, key secret and webhook secret: made up once, kept (0600) for later runs."""
        path = self.data_dir / "razorpay-sandbox-keys.json"
        if path.exists():
            return json.loads(path.read_text())
        keys = {"key_id": f"rzp_test_{secrets.token_hex(7)}", "key_secret": secrets.token_urlsafe(18),
                "webhook_secret": secrets.token_urlsafe(18)}
        write_private(path, json.dumps(keys) + "\n")
        return keys

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def payments_env(self) -> dict[str, str]:
        return {"PAYMENTS_RAZORPAY_KEY_ID": self.keys["key_id"],
                "PAYMENTS_RAZORPAY_KEY_SECRET": self.keys["key_secret"], "PAYMENTS_RAZORPAY_BASE_URL": self.url,
                "PAYMENTS_CHECKOUT_URL_TEMPLATE": f"{self.url}/checkout/{{order_id}}"}

    def gateway_env(self) -> dict[str, str]:
        return {"GATEWAY_RAZORPAY_WEBHOOK_SECRET": self.keys["webhook_secret"]}

    def start(self) -> LocalRazorpaySandbox:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        record = read_record(self._record)
        if record is not None:
            reclaim(record.pid, record.owner, ["sandboxes.razorpay"], "razorpay sandbox", self._say, timeout=10)
        preferred, self.port = self.port, pick_port(self.port)
        if preferred and preferred != self.port:
            self._say(f"port {preferred} is taken; the Razorpay sandbox will use {self.port}")
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "RAZORPAY_SANDBOX_KEY_ID": self.keys["key_id"], "RAZORPAY_SANDBOX_KEY_SECRET": self.keys["key_secret"],
               "RAZORPAY_SANDBOX_WEBHOOK_SECRET": self.keys["webhook_secret"]}
        command = [self._python, "-m", "sandboxes.razorpay", "--host", LOCALHOST, "--port", str(self.port),
                   "--webhook-url", self.webhook_url]
        if self.keep_state:
            command += ["--state-file", str(self.data_dir / "razorpay-sandbox.json")]
        self._process = start_child(command, env=env, cwd=REPO_ROOT, log_path=self.log_path, record=self._record,
                                    ports=(self.port,), timeout=self._start_timeout, what="the Razorpay sandbox")
        self._say(f"Razorpay sandbox at {self.url} (pid {self._process.pid}, log: {self.log_path})")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_recorded_child(process, self._record)
