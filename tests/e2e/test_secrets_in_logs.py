"""No secret reaches a log (issue 13): the flows that handle credentials (a TOTP enrolment among them), driven
through the gateway of the whole mesh, then every service's log file read for each secret (exact strings; for
``bk_``/``bt_`` credentials also the part after the id). The ``platform`` fixture checks the logs of the whole
session the same way at its end, the gateway's secrets key included."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime

import httpx
import pyotp
import pytest

from devstack.mesh import Mesh
from devstack.razorpay_sandbox import WEBHOOK_PATH, LocalRazorpaySandbox
from tests.e2e.conftest import SECRETS, leaked_secrets, remember_secret

pytestmark = pytest.mark.e2e


def test_credentials_used_across_the_mesh_never_reach_a_log(mesh: Mesh, razorpay_sandbox: LocalRazorpaySandbox):
    admin = httpx.Client(base_url=mesh.gateway_url, headers={"Authorization": f"Bearer {mesh.admin_token}"},
                         timeout=30)
    with admin:
        organisation = admin.post("/api/v1/admin/organisations", json={
            "name": f"Secretive {secrets.token_hex(3)}", "billing_email": "ops@secretive.example",
            "billing_currency": "INR", "country": "IN", "state_code": "29", "timezone": "Asia/Kolkata"})
        assert organisation.status_code == 201, organisation.text
        project = admin.post("/api/v1/admin/projects", json={"organisation_id": organisation.json()["id"],
                                                             "name": "api"})
        assert project.status_code == 201, project.text
        key = admin.post("/api/v1/admin/api-keys", json={"project_id": project.json()["id"]})
        assert key.status_code == 201, key.text
        api_key = remember_secret(key.json()["secret"])

        # Events with the key (accepted), and with a wrong key of the same shape (refused): both are logged.
        event = {"events": [{"event_id": f"secret-{secrets.token_hex(6)}", "metric": "units", "customer_id": "c1",
                             "timestamp": datetime.now(UTC).isoformat(), "value": 1}]}
        accepted = httpx.post(f"{mesh.gateway_url}/api/v1/events", json=event,
                              headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
        assert accepted.status_code < 500, accepted.text
        wrong_key = remember_secret(api_key[:12] + secrets.token_hex(16))
        refused = httpx.post(f"{mesh.gateway_url}/api/v1/events", json=event,
                             headers={"Authorization": f"Bearer {wrong_key}"}, timeout=30)
        assert refused.status_code == 401, refused.text

        # A staff user with a password signs in (and once with a wrong one); a token of theirs is minted and used.
        password = remember_secret(f"pw-{secrets.token_urlsafe(18)}")
        wrong_password = remember_secret(f"pw-{secrets.token_urlsafe(18)}")
        email = f"secret-{secrets.token_hex(4)}@example.com"
        user = admin.post("/api/v1/admin/users", json={"email": email, "name": "S", "role": "admin",
                                                       "password": password})
        assert user.status_code == 201, user.text
        with httpx.Client(base_url=mesh.gateway_url, timeout=30) as browser:
            assert browser.post("/api/v1/auth/login", json={"email": email, "password": wrong_password}
                                ).status_code == 401
            signed_in = browser.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert signed_in.status_code == 200, signed_in.text
            remember_secret(signed_in.cookies["billing_session"])
            csrf = {"X-CSRF-Token": remember_secret(signed_in.json()["csrf_token"])}
            # A second factor enrolled: its secret is sealed with the gateway's key (remembered by the fixture).
            enrolment = browser.post("/api/v1/auth/totp", headers=csrf)
            assert enrolment.status_code == 200, enrolment.text
            totp = pyotp.TOTP(remember_secret(enrolment.json()["secret"]))
            assert browser.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": totp.now()}
                                ).status_code == 204
        minted = admin.post(f"/api/v1/admin/users/{user.json()['id']}/tokens", json={"name": "ci"})
        assert minted.status_code == 201, minted.text
        token = remember_secret(minted.json()["secret"])
        me = httpx.get(f"{mesh.gateway_url}/api/v1/admin/me", headers={"Authorization": f"Bearer {token}"},
                       timeout=30)
        assert me.status_code == 200, me.text

    # A webhook signed with the sandbox's secret (an event nobody waits for), and one with a wrong signature.
    body = json.dumps({"event": "payment.authorized", "payload": {}, "created_at": int(time.time())}).encode()
    signature = hmac.new(razorpay_sandbox.keys["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()
    remember_secret(signature)
    delivered = httpx.post(mesh.gateway_url + WEBHOOK_PATH, content=body, timeout=30,
                           headers={"X-Razorpay-Signature": signature, "Content-Type": "application/json"})
    assert delivered.status_code < 500, delivered.text
    forged = httpx.post(mesh.gateway_url + WEBHOOK_PATH, content=body, timeout=30,
                        headers={"X-Razorpay-Signature": "0" * 64, "Content-Type": "application/json"})
    assert forged.status_code == 401

    time.sleep(1.0)  # the services' last lines (payments consuming the webhook) reach their files
    logs = list(mesh.log_dir.glob("*.log"))
    assert {path.stem for path in logs} >= {"gateway", "ingest", "payments"}
    leaks = leaked_secrets(mesh.log_dir, SECRETS)
    assert not leaks, f"secrets in the mesh's logs: {leaks}"


def test_the_check_finds_a_secret_and_the_secret_part_of_a_credential(tmp_path):
    (tmp_path / "gateway.log").write_text('{"event": "rpc", "key": "...abcdefghABCDEFGH0123456789abcdef"}\n')
    (tmp_path / "ingest.log").write_text('{"event": "rpc", "token": "s3cr3t-password"}\n')
    credential = "bk_AbCd1234_abcdefghABCDEFGH0123456789abcdef"
    before = set(SECRETS)
    remember_secret(credential)
    assert "abcdefghABCDEFGH0123456789abcdef" in SECRETS
    SECRETS.intersection_update(before)  # not a secret of the mesh's session
    assert leaked_secrets(tmp_path, {"s3cr3t-password", "abcdefghABCDEFGH0123456789abcdef", "short"}) == [
        "gateway.log: abcd...", "ingest.log: s3cr...",
    ]
