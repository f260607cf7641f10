"""``python -m devstack run`` as an operator runs it: starts its own PostgreSQL and NATS, the services, writes
endpoints.json, and on SIGINT stops everything it started and exits 0; state survives a restart."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pyotp
import pytest

from billing.metering.v1 import metering_pb2, metering_pb2_grpc
from billing_runtime import mesh
from devstack.mesh import health_status
from devstack.processes import pid_alive, read_pid

REPO_ROOT = Path(__file__).resolve().parents[3]


class Devstack:
    """One ``python -m devstack run`` child with its own data directory and endpoints file."""

    def __init__(self, tmp_path: Path, services: str) -> None:
        self.data_dir = tmp_path / "data"
        self.endpoints_file = tmp_path / "endpoints.json"
        self.output = tmp_path / "devstack.out"
        self.services = services
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> dict:
        self.endpoints_file.unlink(missing_ok=True)
        # The operator's shell, minus anything that would point this run at other servers or state.
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "NATS_URL", "BILLING_ADMIN_TOKEN", "BILLING_DATA_DIR")
        }
        command = [sys.executable, "-m", "devstack", "run", "--data-dir", str(self.data_dir)]
        command += ["--endpoints-file", str(self.endpoints_file), "--services", self.services, "--logs", "none"]
        with self.output.open("ab") as output:
            self.process = subprocess.Popen(
                command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while not self.endpoints_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.interrupt()
                pytest.fail(f"devstack did not come up (exit {self.process.returncode}):\n{self.output.read_text()}")
            time.sleep(0.2)
        return json.loads(self.endpoints_file.read_text())

    def pids(self) -> dict[str, int]:
        """The pids of every process this run started, from the pid files they keep."""
        pids = {
            "postgres": read_pid(self.data_dir / "postgres" / "postmaster.pid"),
            "nats": read_pid(self.data_dir / "nats" / "devstack.pid"),
        }
        pids.update({pid_file.stem: read_pid(pid_file) for pid_file in (self.data_dir / "pids").glob("*.pid")})
        assert all(pids.values()), pids
        return pids  # type: ignore[return-value]

    def interrupt(self, times: int = 1) -> int:
        assert self.process is not None
        for _ in range(times):  # impatient people press Ctrl-C more than once
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)  # what Ctrl-C delivers
                time.sleep(0.05)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def _assert_private(path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, f"{path} must be readable by its owner only"


def _assert_all_gone(pids: dict[str, int]) -> None:
    deadline = time.monotonic() + 10
    while any(pid_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {name: pid for name, pid in pids.items() if pid_alive(pid)} == {}


def _assert_mesh_only(endpoints: dict) -> None:
    """A plain gRPC client is refused; the operator's credential, written 0600 beside the state, is accepted."""
    token_file = Path(endpoints["mesh_operator_token_file"])
    _assert_private(token_file)
    address = endpoints["services"]["metering"]
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            metering_pb2_grpc.MeteringServiceStub(channel).ListDeadLetters(metering_pb2.ListDeadLettersRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    operator = mesh.Identity(mesh.OPERATOR, token_file.read_text().strip())
    with mesh.sync_channel(address, operator) as channel:
        metering_pb2_grpc.MeteringServiceStub(channel).ListDeadLetters(metering_pb2.ListDeadLettersRequest())


def test_run_starts_its_own_servers_and_stops_everything_on_sigint(tmp_path: Path) -> None:
    devstack = Devstack(tmp_path, "metering,payments")
    endpoints = devstack.start()
    try:
        assert endpoints["running"] == ["metering", "payments"]
        assert endpoints["database_url"].startswith("postgresql://postgres@127.0.0.1:")
        assert endpoints["database_url"].endswith("/billing")
        assert endpoints["nats_url"].startswith("nats://127.0.0.1:")
        assert endpoints["gateway"] is None and endpoints["demo"] is None
        token = endpoints["admin_token"]
        assert len(token) >= 32
        _assert_private(devstack.endpoints_file)
        _assert_private(devstack.data_dir / "admin_token")
        assert health_status(endpoints["services"]["metering"]) == "SERVING"
        assert health_status(endpoints["services"]["payments"]) == "SERVING"
        _assert_mesh_only(endpoints)
        pids = devstack.pids()
    finally:
        code = devstack.interrupt()
    output = devstack.output.read_text()
    assert code == 0, output
    assert "Ctrl-C stops everything" in output and "SIGINT received: stopping everything" in output
    assert output.index("stopping payments") < output.index("stopping metering") < output.index("stopping NATS")
    assert output.index("stopping NATS") < output.index("stopping PostgreSQL")
    _assert_all_gone(pids)

    # Second start on the same data directory: same token, no new cluster; a double Ctrl-C still stops it all.
    endpoints = devstack.start()
    try:
        assert endpoints["admin_token"] == token
        pids = devstack.pids()
    finally:
        assert devstack.interrupt(times=3) == 0
    output = devstack.output.read_text()
    assert output.count("initialising a new PostgreSQL cluster") == 1
    assert "SIGINT ignored: already stopping" in output
    _assert_all_gone(pids)


def test_run_restarts_a_service_killed_with_sigkill(tmp_path: Path) -> None:
    devstack = Devstack(tmp_path, "metering")
    endpoints = devstack.start()
    try:
        pid = devstack.pids()["metering"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 45
        while "metering healthy again (restart 1)" not in devstack.output.read_text():
            assert devstack.process is not None and devstack.process.poll() is None, devstack.output.read_text()
            assert time.monotonic() < deadline, devstack.output.read_text()
            time.sleep(0.2)
        assert health_status(endpoints["services"]["metering"]) == "SERVING"
        assert devstack.pids()["metering"] != pid and not pid_alive(pid)
        pids = devstack.pids()
    finally:
        code = devstack.interrupt()
    output = devstack.output.read_text()
    assert code == 0, output
    assert "metering exited with -9 (SIGKILL); restarting in 1 s (restart 1)" in output
    assert "A service that crashes is restarted" in output  # the banner says so
    # Ctrl-C stopped it on purpose: no restart after that.
    assert "restart 2" not in output and output.index("stopping metering") > output.index("healthy again")
    _assert_all_gone(pids)


TOTP_EMAIL = "totp-person@example.com"
TOTP_PASSWORD = "a long enough passphrase"


def _enrol_totp(gateway: str, admin: dict[str, str]) -> pyotp.TOTP:
    """A user who signs in with a password and enrols an authenticator; its TOTP."""
    created = httpx.post(f"{gateway}/api/v1/admin/users", headers=admin, json={
        "email": TOTP_EMAIL, "name": "T", "role": "viewer", "password": TOTP_PASSWORD})
    assert created.status_code == 201, created.text
    with httpx.Client(base_url=gateway) as browser:  # make run's cookie is not Secure: plain http keeps it
        signed_in = browser.post("/api/v1/auth/login", json={"email": TOTP_EMAIL, "password": TOTP_PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        csrf = {"X-CSRF-Token": signed_in.json()["csrf_token"]}
        totp = pyotp.TOTP(browser.post("/api/v1/auth/totp", headers=csrf).json()["secret"])
        assert browser.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": totp.now()}).status_code == 204
    return totp


@pytest.mark.e2e
def test_full_run_creates_demo_data_once_through_the_gateway(tmp_path: Path) -> None:
    devstack = Devstack(tmp_path, "invoicing,ingest,metering,payments,notification,gateway")
    endpoints = devstack.start(timeout=180)
    try:
        demo = endpoints["demo"]
        assert demo and demo["api_key"] and demo["organisation_id"] and demo["project_id"]
        _assert_private(devstack.data_dir / "demo.json")
        headers = {"Authorization": f"Bearer {endpoints['admin_token']}"}
        organisation = httpx.get(
            f"{endpoints['gateway']}/api/v1/admin/organisations/{demo['organisation_id']}", headers=headers
        )
        assert organisation.status_code == 200, organisation.text
        assert organisation.json()["name"] == "Acme Demo Pvt Ltd"
        assert httpx.get(f"{endpoints['gateway']}/healthz").status_code == 200
        # The demo invoice is collected through the local Razorpay sandbox: its checkout page is a click away.
        sandbox = endpoints["razorpay_sandbox"]
        assert demo["invoice"]["status"] == "issued" and demo["invoice"]["checkout_url"].startswith(sandbox)
        page = httpx.get(demo["invoice"]["checkout_url"])
        assert page.status_code == 200 and demo["invoice"]["total"].split(".")[0][-3:] in page.text
        # Mail notification sends lands in the local mailbox, readable in a browser.
        mailbox = endpoints["mailbox"]
        assert mailbox["smtp"].startswith("127.0.0.1:") and mailbox["web"].startswith("http://127.0.0.1:")
        assert httpx.get(mailbox["web"]).status_code == 200
        # A person with a second factor: its secret is sealed with the key this run made and keeps.
        totp = _enrol_totp(endpoints["gateway"], headers)
        _assert_private(devstack.data_dir / "gateway-secrets-key")
        key = (devstack.data_dir / "gateway-secrets-key").read_text()
    finally:
        assert devstack.interrupt() == 0, devstack.output.read_text()

    endpoints_again = devstack.start(timeout=180)
    try:
        # Found again, not created twice (the checkout URL names the sandbox's port, which may differ between runs).
        again = endpoints_again["demo"]
        assert {**again, "invoice": None} == {**demo, "invoice": None}
        assert {k: v for k, v in again["invoice"].items() if k != "checkout_url"} == {
            k: v for k, v in demo["invoice"].items() if k != "checkout_url"}
        # The same key: the second factor enrolled before the restart still signs in.
        assert (devstack.data_dir / "gateway-secrets-key").read_text() == key
        signed_in = httpx.post(f"{endpoints_again['gateway']}/api/v1/auth/login", json={
            "email": TOTP_EMAIL, "password": TOTP_PASSWORD, "totp_code": totp.at(time.time() + 30)})
        assert signed_in.status_code == 200, signed_in.text
    finally:
        assert devstack.interrupt() == 0
    assert "demo data present" in devstack.output.read_text()
