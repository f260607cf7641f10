"""The local Stripe (``python -m sandboxes.stripe``: localstripe, see :mod:`sandboxes.stripe`) as a process of the
local stack.

``make run`` starts it unless a real Stripe secret key is configured (``PAYMENTS_STRIPE_SECRET_KEY``), points
payments' Stripe API base at it, gives it the gateway's webhook URL, and shares the endpoint secret with the
gateway, so Stripe's signed webhooks take the same path in a local run as in production. Its keys and endpoint
secret are made up once and kept (0600) in the data directory, with its objects.
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

DEFAULT_PORT = 8420  # localstripe's own default
REAL_KEYS_ENV = "PAYMENTS_STRIPE_SECRET_KEY"
WEBHOOK_PATH = "/api/v1/webhooks/stripe"


def real_keys_configured() -> bool:
    return bool(os.environ.get(REAL_KEYS_ENV, "").strip() or os.environ.get(REAL_KEYS_ENV + "_FILE", "").strip())


class LocalStripe:
    def __init__(self, data_dir: Path, webhook_url: str, *, port: int = DEFAULT_PORT, say: Reporter = console.say,
                 start_timeout: float = 30.0, python: str = sys.executable, keep_state: bool = True) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.keep_state = keep_state
        self.webhook_url = webhook_url
        self.port = port
        self.log_path = self.data_dir / "stripe-local.log"
        self._record = self.data_dir / "stripe-local.pid"
        self._say = say
        self._start_timeout = start_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self.keys = self._keys()

    def _keys(self) -> dict[str, str]:
        """Its secret and publishable keys and the webhook endpoint secret: made up once, kept for later runs."""
        path = self.data_dir / "stripe-local-keys.json"
        if path.exists():
            return json.loads(path.read_text())
        keys = {"secret_key": f"sk_test_{secrets.token_hex(12)}", "publishable_key": f"pk_test_{secrets.token_hex(12)}",
                "webhook_secret": f"whsec_{secrets.token_urlsafe(24)}"}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(keys) + "\n")
        return keys

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def payments_env(self) -> dict[str, str]:
        return {"PAYMENTS_STRIPE_SECRET_KEY": self.keys["secret_key"],
                "PAYMENTS_STRIPE_PUBLISHABLE_KEY": self.keys["publishable_key"], "PAYMENTS_STRIPE_API_BASE": self.url}

    def gateway_env(self) -> dict[str, str]:
        return {"GATEWAY_STRIPE_WEBHOOK_SECRET": self.keys["webhook_secret"]}

    def start(self) -> LocalStripe:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        record = read_record(self._record)
        if record is not None:
            reclaim(record.pid, record.owner, ["sandboxes.stripe"], "local stripe", self._say, timeout=10)
        preferred, self.port = self.port, pick_port(self.port)
        if preferred and preferred != self.port:
            self._say(f"port {preferred} is taken; the local Stripe will use {self.port}")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "STRIPE_SANDBOX_SECRET_KEY": self.keys["secret_key"],
               "STRIPE_SANDBOX_PUBLISHABLE_KEY": self.keys["publishable_key"],
               "STRIPE_SANDBOX_WEBHOOK_SECRET": self.keys["webhook_secret"]}
        command = [self._python, "-m", "sandboxes.stripe", "--host", LOCALHOST, "--port", str(self.port),
                   "--webhook-url", self.webhook_url]
        if self.keep_state:
            command += ["--state-file", str(self.data_dir / "stripe-local.pickle")]
        self._process = start_child(command, env=env, cwd=REPO_ROOT, log_path=self.log_path, record=self._record,
                                    ports=(self.port,), timeout=self._start_timeout, what="the local Stripe")
        self._say(f"local Stripe at {self.url} (pid {self._process.pid}, log: {self.log_path})")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_recorded_child(process, self._record)
