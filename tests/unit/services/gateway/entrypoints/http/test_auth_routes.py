"""/api/v1/auth over fakes: signing in sets an HttpOnly, SameSite=Strict, Secure cookie; the cookie opens staff
routes with the user's role; writes need the CSRF token (and no foreign Origin), bearer calls do not; sign-out,
password changes, disabling and TOTP behave as docs/security.md says, and each is audited."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.errors import NotFound
from services.gateway.domain.sessions import hash_value
from tests.unit.services.gateway.entrypoints.http.fake_services import Gateway

PASSWORD = "correct horse battery"
ORG = {"name": "Acme", "billing_email": "b@acme.example", "billing_currency": "INR", "country": "IN"}


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def sign_in(gateway: Gateway, email: str, password: str = PASSWORD, **extra) -> dict:
    reply = gateway.http.post("/api/v1/auth/login", json={"email": email, "password": password, **extra})
    assert reply.status_code == 200, reply.json()
    return reply.json()


def test_signing_in_sets_a_strict_http_only_secure_cookie_and_answers_the_csrf_token(gateway):
    user = gateway.person("operator")
    reply = gateway.http.post("/api/v1/auth/login", json={"email": user.email.upper(), "password": PASSWORD})
    assert reply.status_code == 200, reply.json()
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith("billing_session=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Secure", "Max-Age=43200"):
        assert attribute.lower() in cookie.lower(), attribute
    body = reply.json()
    assert body["user"]["id"] == user.id and body["user"]["role"] == "operator" and "password" not in body["user"]
    assert len(body["csrf_token"]) >= 40
    # Only hashes are stored.
    session_id = gateway.http.cookies["billing_session"]
    stored = gateway.sessions.rows[hash_value(session_id)]
    assert stored.csrf_hash == hash_value(body["csrf_token"]) and session_id not in str(stored)

    again = gateway.http.get("/api/v1/auth/session").json()
    assert again["csrf_token"] == body["csrf_token"] and again["user"]["email"] == user.email
    me = gateway.http.get("/api/v1/admin/me").json()
    assert (me["actor"], me["role"], me["credential"]) == (f"user:{user.id}", "operator", "session")
    assert gateway.audited() == [("auth.login", user.id)]
    assert gateway.audit[0]["role"] == "operator" and gateway.audit[0]["actor"] == f"user:{user.id}"


def test_the_cookie_is_not_secure_when_configured_for_plain_http():
    gateway = Gateway(cookie_secure=False)
    gateway.http.base_url = "http://testserver"
    user = gateway.person("viewer")
    reply = gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert "secure" not in reply.headers["set-cookie"].lower()


def test_a_wrong_password_and_an_unknown_email_answer_the_same_and_are_audited_without_the_password(gateway):
    user = gateway.person("admin")
    wrong = gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": "not the password!"})
    unknown = gateway.http.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"error": "unauthenticated", "detail": "email or password is wrong"}
    assert "set-cookie" not in wrong.headers
    assert [(e["action"], e["actor"], e["reason"]) for e in gateway.audit] == [
        ("auth.login_failed", user.email, "wrong password"), ("auth.login_failed", "nobody@example.com",
                                                              "unknown email"),
    ]
    assert PASSWORD not in str(gateway.audit) and "not the password" not in str(gateway.audit)
    long = gateway.http.post("/api/v1/auth/login", json={"email": "x" * 300 + "@example.com", "password": "p" * 12})
    assert long.status_code == 401 and len(gateway.audit[-1]["actor"]) <= 64


def test_writes_with_the_cookie_need_the_csrf_token_and_bearer_writes_do_not(gateway):
    admin = gateway.person("admin")
    csrf = sign_in(gateway, admin.email)["csrf_token"]
    gateway.invoicing.answer("ListOrganisations", invoicing_pb2.ListOrganisationsResponse())
    assert gateway.http.get("/api/v1/admin/organisations").status_code == 200

    gateway.invoicing.answer("CreateOrganisation", NotFound("stop here"))
    missing = gateway.http.post("/api/v1/admin/organisations", json=ORG)
    assert missing.status_code == 403 and missing.json()["detail"] == "missing or wrong X-CSRF-Token"
    altered = csrf[:-1] + ("B" if csrf.endswith("A") else "A")  # one character off (never the token itself)
    wrong = gateway.http.post("/api/v1/admin/organisations", json=ORG, headers={"X-CSRF-Token": altered})
    assert wrong.status_code == 403
    foreign = gateway.http.post("/api/v1/admin/organisations", json=ORG,
                                headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and "Origin" in foreign.json()["detail"]
    assert "CreateOrganisation" not in gateway.invoicing.requests, "a refused write reaches no service"

    same_site = gateway.http.post("/api/v1/admin/organisations", json=ORG,
                                  headers={"X-CSRF-Token": csrf, "Origin": "https://testserver"})
    assert same_site.status_code == 404  # past access control: the fake service answered
    assert len(gateway.invoicing.requests["CreateOrganisation"]) == 1

    # A bearer token is never ambient: no CSRF token needed (and the cookie is not consulted).
    bearer = gateway.staff("admin")
    assert gateway.http.post("/api/v1/admin/organisations", json=ORG, headers=bearer).status_code == 404


def test_the_session_routes_need_the_session_and_check_csrf_too(gateway):
    gateway.staff("admin")
    assert gateway.http.get("/api/v1/auth/session").status_code == 401
    bearer = gateway.staff("admin")
    assert gateway.http.get("/api/v1/auth/session", headers=bearer).status_code == 401
    user = gateway.person("viewer")
    sign_in(gateway, user.email)
    assert gateway.http.post("/api/v1/auth/logout").status_code == 403, "logout without CSRF token"


def test_the_role_still_applies_to_the_cookie(gateway):
    viewer = gateway.person("viewer")
    csrf = sign_in(gateway, viewer.email)["csrf_token"]
    refused = gateway.http.post("/api/v1/admin/organisations", json=ORG, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and "viewer role" in refused.json()["detail"]


def test_logout_ends_the_session_and_clears_the_cookie(gateway):
    user = gateway.person("viewer")
    csrf = sign_in(gateway, user.email)["csrf_token"]
    session_id = gateway.http.cookies["billing_session"]
    reply = gateway.http.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert reply.status_code == 204
    assert 'billing_session=""' in reply.headers["set-cookie"] or "Max-Age=0" in reply.headers["set-cookie"]
    replayed = gateway.http.get("/api/v1/admin/me", cookies={"billing_session": session_id})
    assert replayed.status_code == 401
    assert ("auth.logout", user.id) in gateway.audited()


def test_idle_and_expired_sessions_and_disabled_users_are_refused(gateway):
    user = gateway.person("operator")
    sign_in(gateway, user.email)
    session_id = gateway.http.cookies["billing_session"]
    key = hash_value(session_id)
    stored = gateway.sessions.rows[key]
    gateway.sessions.rows[key] = type(stored)(**{**stored.__dict__,
                                                 "last_seen_at": datetime.now(UTC) - timedelta(minutes=31)})
    assert gateway.http.get("/api/v1/admin/me").status_code == 401
    gateway.sessions.rows[key] = type(stored)(**{**stored.__dict__, "expires_at": datetime.now(UTC)})
    assert gateway.http.get("/api/v1/admin/me").status_code == 401
    gateway.sessions.rows[key] = stored
    assert gateway.http.get("/api/v1/admin/me").status_code == 200

    admin = gateway.staff("admin")
    assert gateway.http.patch(f"/api/v1/admin/users/{user.id}", headers=admin, json={"disabled": True}).status_code \
        == 200
    assert gateway.http.get("/api/v1/admin/me").status_code == 401, "disabling ends the session at once"
    again = gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert again.status_code == 401 and again.json()["detail"] == "email or password is wrong"


def test_changing_the_password_needs_the_current_one_and_ends_the_other_sessions(gateway):
    user = gateway.person("viewer")
    sign_in(gateway, user.email)
    other_session = gateway.http.cookies["billing_session"]
    gateway.http.cookies.clear()
    csrf = sign_in(gateway, user.email)["csrf_token"]
    headers = {"X-CSRF-Token": csrf}

    wrong = gateway.http.post("/api/v1/auth/password", headers=headers,
                              json={"current_password": "not the password!", "new_password": "a brand new password"})
    assert wrong.status_code == 403 and wrong.json()["field"] == "current_password"
    short = gateway.http.post("/api/v1/auth/password", headers=headers,
                              json={"current_password": PASSWORD, "new_password": "short"})
    assert short.status_code == 400 and short.json()["field"] == "new_password"
    same_as_email = gateway.http.post("/api/v1/auth/password", headers=headers,
                                      json={"current_password": PASSWORD, "new_password": user.email})
    assert same_as_email.status_code == 400

    changed = gateway.http.post("/api/v1/auth/password", headers=headers,
                                json={"current_password": PASSWORD, "new_password": "a brand new password"})
    assert changed.status_code == 204
    assert gateway.http.get("/api/v1/auth/session").status_code == 200, "this session stays"
    assert gateway.http.get("/api/v1/auth/session", cookies={"billing_session": other_session}).status_code == 401
    gateway.http.cookies.clear()
    assert gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).status_code \
        == 401
    sign_in(gateway, user.email, "a brand new password")
    assert ("auth.password_change", user.id) in gateway.audited()
    assert "a brand new password" not in str(gateway.audit)


def test_an_admin_sets_a_password_and_resets_totp_and_neither_is_returned(gateway):
    admin = gateway.staff("admin")
    created = gateway.http.post("/api/v1/admin/users", headers=admin, json={
        "email": "new@example.com", "name": "New", "role": "viewer", "password": "twelve chars ok"})
    assert created.status_code == 201, created.json()
    assert created.json()["has_password"] is True and "twelve" not in created.text
    sign_in(gateway, "new@example.com", "twelve chars ok")
    weak = gateway.http.post("/api/v1/admin/users", headers=admin, json={
        "email": "weak@example.com", "name": "W", "role": "viewer", "password": "short"})
    assert weak.status_code == 400 and weak.json()["field"] == "password"
    assert "weak@example.com" not in {u.email for u in gateway.users.rows.values()}

    user_id = created.json()["id"]
    reset = gateway.http.patch(f"/api/v1/admin/users/{user_id}", headers=admin,
                               json={"password": "another good one", "reset_totp": True})
    assert reset.status_code == 200 and reset.json()["totp_enabled"] is False
    assert gateway.http.get("/api/v1/auth/session").status_code == 401, "a new password ends the sessions"
    assert ("user.password_set", user_id) in gateway.audited() and ("user.totp_reset", user_id) in gateway.audited()
    assert "another good one" not in str(gateway.audit)


def test_totp_enrolment_confirmation_sign_in_with_a_code_and_no_replay(gateway):
    user = gateway.person("operator")
    csrf = {"X-CSRF-Token": sign_in(gateway, user.email)["csrf_token"]}
    enrolment = gateway.http.post("/api/v1/auth/totp", headers=csrf)
    assert enrolment.status_code == 200
    secret = enrolment.json()["secret"]
    assert enrolment.json()["otpauth_uri"].startswith("otpauth://totp/") and secret in enrolment.json()["otpauth_uri"]
    totp = pyotp.TOTP(secret)
    not_yet = gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert not_yet.status_code == 200, "not in force before confirmation"
    csrf = {"X-CSRF-Token": not_yet.json()["csrf_token"]}

    wrong = gateway.http.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": "000000"
                              if totp.now() != "000000" else "111111"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "code"
    code = totp.now()
    assert gateway.http.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": code}).status_code == 204

    gateway.http.cookies.clear()
    missing = gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert missing.status_code == 401
    assert missing.json() == {"error": "unauthenticated", "detail": "totp_code is required", "field": "totp_code"}
    replay = gateway.http.post("/api/v1/auth/login",
                               json={"email": user.email, "password": PASSWORD, "totp_code": code})
    assert replay.status_code == 401 and replay.json()["field"] == "totp_code", "the confirmation's code is used"
    next_code = totp.at(time.time() + 30)
    csrf = {"X-CSRF-Token": sign_in(gateway, user.email, totp_code=next_code)["csrf_token"]}
    again = gateway.http.post("/api/v1/auth/login",
                              json={"email": user.email, "password": PASSWORD, "totp_code": next_code})
    assert again.status_code == 401, "a code is accepted once"

    assert gateway.http.post("/api/v1/auth/totp", headers=csrf).status_code == 422, "already enabled"
    off = gateway.http.request("DELETE", "/api/v1/auth/totp", headers=csrf, json={"code": next_code})
    assert off.status_code == 400, "disabling needs a fresh code"
    off = gateway.http.request("DELETE", "/api/v1/auth/totp", headers=csrf,
                               json={"code": totp.at(time.time() + 60)})
    assert off.status_code == 400, "two steps ahead is outside the window"
    # Simulate the next step arriving: move the last used step back instead of waiting 30 s.
    secret_, step = gateway.users.totp[user.id]
    gateway.users.totp[user.id] = (secret_, step - 2)
    off = gateway.http.request("DELETE", "/api/v1/auth/totp", headers=csrf, json={"code": totp.now()})
    assert off.status_code == 204, off.json()
    gateway.http.cookies.clear()
    sign_in(gateway, user.email)
    actions = [a for a, _ in gateway.audited()]
    assert "auth.totp_enable" in actions and "auth.totp_disable" in actions
    assert ("auth.login_failed") in actions


def test_a_hash_made_with_other_parameters_is_replaced_at_sign_in(gateway):
    import argon2

    user = gateway.person("viewer")
    old = argon2.PasswordHasher(time_cost=2, memory_cost=16, parallelism=1).hash(PASSWORD)
    gateway.users.password_hashes[user.id] = old
    sign_in(gateway, user.email)
    new = gateway.users.password_hashes[user.id]
    assert new != old and "t=1" in new and "m=8" in new
    gateway.http.cookies.clear()
    sign_in(gateway, user.email)  # still the same password


def test_the_login_throttle_hook_sees_every_attempt_and_can_refuse():
    from billing_runtime.errors import PermissionDenied

    class Throttle:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, str]] = []

        async def check(self, source: str, email: str) -> None:
            self.calls.append(("check", source, email))
            if email == "blocked@example.com":
                raise PermissionDenied("too many failed sign-ins; try later")

        async def failed(self, source: str, email: str) -> None:
            self.calls.append(("failed", source, email))

        async def succeeded(self, source: str, email: str) -> None:
            self.calls.append(("succeeded", source, email))

    throttle = Throttle()
    gateway = Gateway(login_throttle=throttle)
    user = gateway.person("viewer")
    gateway.http.post("/api/v1/auth/login", json={"email": user.email, "password": "wrong password!"})
    sign_in(gateway, user.email)
    assert [c[0] for c in throttle.calls] == ["check", "failed", "check", "succeeded"]
    assert throttle.calls[0][2] == user.email
    assert gateway.http.post("/api/v1/auth/login", json={"email": "blocked@example.com", "password": PASSWORD}) \
        .status_code == 403
