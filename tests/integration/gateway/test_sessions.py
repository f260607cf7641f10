"""People signing in against the real gateway and its PostgreSQL schema: a password set by an admin opens a
session cookie (HttpOnly, SameSite=Strict), the cookie reads the admin API with the user's role, writes need the
CSRF token (a refused write changes nothing), sign-out and disabling end the session, and TOTP, once confirmed, is
required at sign-in and its codes cannot be replayed. The gateway under test sets ``GATEWAY_COOKIE_SECURE`` to its
default (Secure), so these clients keep the cookie by hand: a browser would only send it over https."""

from __future__ import annotations

import secrets
import time

import httpx
import pyotp

PASSWORD = "a long enough passphrase"


async def _person(admin_http: httpx.AsyncClient, role: str) -> dict:
    email = f"{role}-{secrets.token_hex(4)}@example.com"
    created = await admin_http.post("/api/v1/admin/users",
                                    json={"email": email, "name": "P", "role": role, "password": PASSWORD})
    assert created.status_code == 201, created.text
    assert created.json()["has_password"] is True and PASSWORD not in created.text
    return created.json()


async def _login(gateway_url: str, email: str, **extra) -> tuple[httpx.Response, httpx.AsyncClient]:
    """The sign-in's answer, and a client (not yet entered) holding its cookie."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        reply = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, **extra})
    browser = httpx.AsyncClient(base_url=gateway_url, timeout=30)
    if reply.status_code == 200:
        browser.cookies.set("billing_session", reply.cookies["billing_session"])
    return reply, browser


async def test_a_signed_in_admin_reads_and_writes_only_with_the_csrf_token_until_signing_out(admin_http, gateway_url):
    user = await _person(admin_http, "admin")
    reply, browser = await _login(gateway_url, user["email"])
    async with browser:
        assert reply.status_code == 200, reply.text
        cookie = reply.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie and "secure" in cookie
        csrf = reply.json()["csrf_token"]

        me = (await browser.get("/api/v1/admin/me")).json()
        assert (me["actor"], me["role"], me["credential"]) == (f"user:{user['id']}", "admin", "session")
        assert (await browser.get("/api/v1/admin/organisations")).status_code == 200

        email = f"made-by-cookie-{secrets.token_hex(4)}@example.com"
        body = {"email": email, "name": "X", "role": "viewer"}
        refused = await browser.post("/api/v1/admin/users", json=body)
        assert refused.status_code == 403 and refused.json()["detail"] == "missing or wrong X-CSRF-Token"
        cross_site = await browser.post("/api/v1/admin/users", json=body,
                                        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
        assert cross_site.status_code == 403
        listed = (await admin_http.get("/api/v1/admin/users", params={"page_size": 500})).json()["data"]
        assert email not in {u["email"] for u in listed}, "a refused write changes nothing"

        made = await browser.post("/api/v1/admin/users", json=body, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201, made.text

        logout = await browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 204
        assert (await browser.get("/api/v1/admin/me")).status_code == 401, "the cookie is refused after sign-out"

    log = (await admin_http.get("/api/v1/admin/audit-log", params={"actor": f"user:{user['id']}"})).json()
    actions = {(e["action"], e["role"]) for e in log}
    assert {("auth.login", "admin"), ("user.create:viewer", "admin"), ("auth.logout", "admin")} <= actions


async def test_wrong_passwords_and_disabled_users_are_refused_alike(admin_http, gateway_url):
    user = await _person(admin_http, "viewer")
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30) as client:
        wrong = await client.post("/api/v1/auth/login", json={"email": user["email"], "password": "wrong password!"})
        unknown = await client.post("/api/v1/auth/login",
                                    json={"email": f"nobody-{secrets.token_hex(4)}@example.com", "password": PASSWORD})
        assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()

    reply, browser = await _login(gateway_url, user["email"])
    async with browser:
        assert (await browser.get("/api/v1/auth/session")).status_code == 200
        await admin_http.patch(f"/api/v1/admin/users/{user['id']}", json={"disabled": True})
        assert (await browser.get("/api/v1/auth/session")).status_code == 401, "disabling ends the session at once"
    again, client = await _login(gateway_url, user["email"])
    await client.aclose()
    assert again.status_code == 401

    failures = (await admin_http.get("/api/v1/admin/audit-log",
                                     params={"actor": user["email"], "action": "auth.login_failed"})).json()
    assert {e["reason"] for e in failures} >= {"wrong password", "user disabled"}
    assert all(PASSWORD not in str(e) and "wrong password!" not in str(e) for e in failures)


async def test_totp_enrolment_confirmation_and_sign_in_with_a_code_that_cannot_be_replayed(admin_http, gateway_url):
    user = await _person(admin_http, "operator")
    reply, browser = await _login(gateway_url, user["email"])
    async with browser:
        csrf = {"X-CSRF-Token": reply.json()["csrf_token"]}
        enrolment = await browser.post("/api/v1/auth/totp", headers=csrf)
        assert enrolment.status_code == 200, enrolment.text
        totp = pyotp.TOTP(enrolment.json()["secret"])
        code = totp.now()
        confirmed = await browser.post("/api/v1/auth/totp/confirm", headers=csrf, json={"code": code})
        assert confirmed.status_code == 204, confirmed.text

    missing, client = await _login(gateway_url, user["email"])
    await client.aclose()
    assert missing.status_code == 401
    assert missing.json() == {"error": "unauthenticated", "detail": "totp_code is required", "field": "totp_code"}
    replayed, client = await _login(gateway_url, user["email"], totp_code=code)
    await client.aclose()
    assert replayed.status_code == 401 and replayed.json()["field"] == "totp_code"

    next_code = totp.at(time.time() + 30)  # within the ±1 step window
    signed_in, browser = await _login(gateway_url, user["email"], totp_code=next_code)
    async with browser:
        assert signed_in.status_code == 200, signed_in.text
        assert (await browser.get("/api/v1/auth/session")).json()["user"]["totp_enabled"] is True
    again, client = await _login(gateway_url, user["email"], totp_code=next_code)
    await client.aclose()
    assert again.status_code == 401, "a code is accepted once"

    reset = await admin_http.patch(f"/api/v1/admin/users/{user['id']}", json={"reset_totp": True})
    assert reset.json()["totp_enabled"] is False
    plain, client = await _login(gateway_url, user["email"])
    await client.aclose()
    assert plain.status_code == 200

    log = (await admin_http.get("/api/v1/admin/audit-log", params={"resource_id": user["id"]})).json()
    actions = {e["action"] for e in log}
    assert {"auth.totp_enable", "user.totp_reset", "auth.login", "auth.login_failed"} <= actions


async def test_changing_the_password_ends_the_other_sessions(admin_http, gateway_url):
    user = await _person(admin_http, "viewer")
    _, first = await _login(gateway_url, user["email"])
    reply, second = await _login(gateway_url, user["email"])
    async with first, second:
        changed = await second.post("/api/v1/auth/password", headers={"X-CSRF-Token": reply.json()["csrf_token"]},
                                    json={"current_password": PASSWORD, "new_password": "another passphrase!"})
        assert changed.status_code == 204, changed.text
        assert (await second.get("/api/v1/auth/session")).status_code == 200
        assert (await first.get("/api/v1/auth/session")).status_code == 401
