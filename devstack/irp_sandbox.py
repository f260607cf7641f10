"""The local IRP sandbox (``python -m sandboxes.irp``) as a process of the local stack: the demo supplier's
e-invoicing registers its B2B and export invoices there (docs/india.md).

``make run`` starts it unless real IRP credentials are configured (``INVOICING_IRP_CLIENT_ID``), and turns
e-invoicing on for the demo supplier (a made-up Karnataka GSTIN) with invoicing pointed at it. Its API user's
credentials are made up once and kept (0600) in the data directory; its key pairs (the one the AppKey is
encrypted to, the one that signs invoices and QR codes) and its registered IRNs are kept there too, so a restart
keeps them and PDFs printed before still verify.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Self

from devstack import console
from devstack.console import Reporter
from devstack.local_sandbox import start_child, stop_recorded_child
from devstack.mesh import REPO_ROOT
from devstack.ports import LOCALHOST, pick_port
from devstack.processes import read_record, reclaim
from devstack.state import write_private

DEFAULT_PORT = 8095
REAL_IRP_ENV = "INVOICING_IRP_CLIENT_ID"
MODULE = "sandboxes.irp"
# The demo supplier: Karnataka (29), a made-up PAN, entity 1, "Z" and a correct check character.
DEMO_SUPPLIER_GSTIN = "29AABCB1234C1ZA"


def real_irp_configured() -> bool:
    return bool(os.environ.get(REAL_IRP_ENV, "").strip())


class LocalIrpSandbox:
    title = "the IRP sandbox"

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        say: Reporter = console.say,
        start_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = DEFAULT_PORT if port is None else port
        self.key_dir = self.data_dir / "irp-sandbox-keys"
        self.log_path = self.data_dir / "irp-sandbox.log"
        self._record = self.data_dir / "irp-sandbox.pid"
        self._say = say
        self._start_timeout = start_timeout
        self._python = python
        self._process: subprocess.Popen[bytes] | None = None
        self.credentials = self._credentials()

    def _credentials(self) -> dict[str, str]:
        path = self.data_dir / "irp-sandbox-credentials.json"
        if path.exists():
            return json.loads(path.read_text())
        made = {
            "client_id": f"irp-{secrets.token_hex(6)}",
            "client_secret": secrets.token_urlsafe(18),
            "username": "demo-supplier",
            "password": secrets.token_urlsafe(18),
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        write_private(path, json.dumps(made) + "\n")
        return made

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def child_env(self) -> dict[str, str]:
        c = self.credentials
        return {
            "IRP_SANDBOX_CLIENT_ID": c["client_id"],
            "IRP_SANDBOX_CLIENT_SECRET": c["client_secret"],
            "IRP_SANDBOX_USERNAME": c["username"],
            "IRP_SANDBOX_PASSWORD": c["password"],
        }

    def invoicing_env(self) -> dict[str, str]:
        """Invoicing's settings: e-invoicing on for the demo supplier, with the sandbox as its IRP."""
        c = self.credentials
        return {
            "INVOICING_EINVOICE_ENABLED": "true",
            "INVOICING_SUPPLIER_GSTIN": DEMO_SUPPLIER_GSTIN,
            "INVOICING_IRP_BASE_URL": self.url,
            "INVOICING_IRP_CLIENT_ID": c["client_id"],
            "INVOICING_IRP_CLIENT_SECRET": c["client_secret"],
            "INVOICING_IRP_USERNAME": c["username"],
            "INVOICING_IRP_PASSWORD": c["password"],
            "INVOICING_IRP_PUBLIC_KEY_PATH": str(self.key_dir / "auth.public.pem"),
            "INVOICING_IRP_SIGNING_PUBLIC_KEY_PATH": str(self.key_dir / "signing.public.pem"),
        }

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        record = read_record(self._record)
        if record is not None:
            reclaim(record.pid, record.owner, [MODULE], self.title, self._say, timeout=10)
        preferred, self.port = self.port, pick_port(self.port)
        if preferred and preferred != self.port:
            self._say(f"port {preferred} is taken; {self.title} will use {self.port}")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.child_env()}
        command = [
            self._python,
            "-m",
            MODULE,
            "--host",
            LOCALHOST,
            "--port",
            str(self.port),
            "--key-dir",
            str(self.key_dir),
            "--state-file",
            str(self.data_dir / "irp-sandbox.json"),
        ]
        self._process = start_child(
            command,
            env=env,
            cwd=REPO_ROOT,
            log_path=self.log_path,
            record=self._record,
            ports=(self.port,),
            timeout=self._start_timeout,
            what=self.title,
        )
        self._say(f"The IRP sandbox at {self.url} (pid {self._process.pid}, log: {self.log_path})")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        stop_recorded_child(process, self._record)
