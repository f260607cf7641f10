"""The dashboard's pages in front of fake services: signing in and out through the same use case as the API,
the permission table's answers as pages (sign-in form, 403, 404), CSRF on writes, and that a project's key opens
no page."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.errors import InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import Gateway

PASSWORD = "correct horse battery"


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _sign_in(gateway: Gateway, email: str, password: str = PASSWORD, **fields: str):
    return gateway.http.post("/app/login", data={"email": email, "password": password, **fields},
                             follow_redirects=False)


def _csrf(gateway: Gateway) -> dict[str, str]:
    return {"X-CSRF-Token": gateway.http.get("/api/v1/auth/session").json()["csrf_token"]}


def test_signed_out_a_page_leads_to_the_sign_in_form_and_back(gateway):
    reply = gateway.http.get("/app/overview", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/app/login?next=/app/overview"
    form = gateway.http.get("/app/login?next=/app/overview")
    assert form.status_code == 200 and 'name="next" value="/app/overview"' in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]
    # htmx asking for a part of a page moves the whole page instead.
    polled = gateway.http.get("/app/operator/invoice-runs/run_1", headers={"HX-Request": "true"},
                              follow_redirects=False)
    assert polled.status_code == 204 and polled.headers["HX-Redirect"].startswith("/app/login")


def test_a_project_key_opens_no_page(gateway):
    gateway.add_key("bk_project_key", "org_a")
    reply = gateway.http.get("/app/overview", headers={"Authorization": "Bearer bk_project_key"},
                             follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].startswith("/app/login")
    assert "VerifyApiKey" not in gateway.clients.ingest.requests
    assert gateway.invoicing.requests == {}


def test_signing_in_is_the_apis_sign_in_and_lands_by_kind(gateway):
    member = gateway.person("member", organisation_id="org_a")
    viewer = gateway.person("viewer")
    wrong = _sign_in(gateway, member.email, "not the password at all")
    assert wrong.status_code == 401 and "email or password is wrong" in wrong.text
    assert "billing_session" not in wrong.cookies

    signed_in = _sign_in(gateway, member.email, next="https://elsewhere.example/")
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/app/overview"
    assert "billing_session" in signed_in.headers["set-cookie"] and "HttpOnly" in signed_in.headers["set-cookie"]
    assert ("auth.login_failed", member.id) in gateway.audited() and ("auth.login", member.id) in gateway.audited()

    gateway.http.cookies.clear()
    staff = _sign_in(gateway, viewer.email, next="/app/operator/audit-log")
    assert staff.headers["location"] == "/app/operator/audit-log"
    landing = gateway.http.get("/app", follow_redirects=False)
    assert landing.headers["location"] == "/app/operator/organisations"


def test_a_sign_in_form_posted_from_another_site_is_refused(gateway):
    member = gateway.person("member", organisation_id="org_a")
    reply = gateway.http.post("/app/login", data={"email": member.email, "password": PASSWORD},
                              headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert reply.status_code == 403 and "billing_session" not in reply.headers.get("set-cookie", "")
    assert ("auth.login", member.id) not in gateway.audited()


def test_a_customer_is_refused_operators_pages_and_other_organisations_invoices(gateway):
    member = gateway.person("member", organisation_id="org_a")
    _sign_in(gateway, member.email)
    refused = gateway.http.get("/app/operator/organisations")
    assert refused.status_code == 403 and "does not grant" in refused.text and "<main" in refused.text
    assert gateway.invoicing.requests.get("ListOrganisations") is None

    gateway.invoicing.answer("GetInvoice", invoicing_pb2.GetInvoiceResponse(invoice=invoicing_pb2.Invoice(
        id="inv_b", organisation_id="org_b", status=invoicing_pb2.INVOICE_STATUS_ISSUED)))
    for path in ("/app/invoices/inv_b", "/app/invoices/inv_b/pdf"):
        assert gateway.http.get(path).status_code == 404, path
    assert "RenderInvoice" not in gateway.invoicing.requests
    gateway.invoicing.replies["GetInvoice"].clear()
    gateway.invoicing.answer("GetInvoice", NotFound("invoice inv_x not found"))
    assert gateway.http.get("/app/invoices/inv_x").status_code == 404


def test_starting_a_run_needs_the_operate_permission_and_the_csrf_token(gateway):
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    form = {"period_key": "2026-11", "organisation_id": ""}
    assert gateway.http.post("/app/operator/invoice-runs", data=form, headers=_csrf(gateway)).status_code == 403
    assert "StartInvoiceRun" not in gateway.invoicing.requests

    gateway.http.cookies.clear()
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    assert gateway.http.post("/app/operator/invoice-runs", data=form).status_code == 403  # no CSRF token
    assert "StartInvoiceRun" not in gateway.invoicing.requests

    gateway.invoicing.answer("StartInvoiceRun", invoicing_pb2.StartInvoiceRunResponse(created=True, invoice_run=(
        invoicing_pb2.InvoiceRun(id="run_1", period_key="2026-11", state=invoicing_pb2.INVOICE_RUN_STATE_RUNNING,
                                 organisations_total=4, organisations_done=1))))
    started = gateway.http.post("/app/operator/invoice-runs", data=form, headers=_csrf(gateway))
    assert started.status_code == 200, started.text
    assert 'hx-trigger="every 1s"' in started.text and "1 of 4" in started.text
    assert gateway.invoicing.requests["StartInvoiceRun"][0].period_key == "2026-11"
    assert ("invoice_run.start", "run_1") in gateway.audited()

    gateway.invoicing.answer("GetInvoiceRun", invoicing_pb2.GetInvoiceRunResponse(invoice_run=invoicing_pb2.InvoiceRun(
        id="run_1", period_key="2026-11", state=invoicing_pb2.INVOICE_RUN_STATE_COMPLETED, organisations_total=4,
        organisations_done=4, invoiced=4)))
    finished = gateway.http.get("/app/operator/invoice-runs/run_1", headers={"HX-Request": "true"})
    assert "4 of 4" in finished.text and "hx-trigger" not in finished.text  # the polling stops


def test_a_refused_start_shows_the_apis_sentence_where_the_form_says(gateway):
    operator = gateway.person("operator")
    _sign_in(gateway, operator.email)
    gateway.invoicing.answer("StartInvoiceRun", InvalidArgument("must be YYYY-MM", field="period_key"))
    reply = gateway.http.post("/app/operator/invoice-runs", data={"period_key": "", "organisation_id": ""},
                              headers={**_csrf(gateway), "HX-Request": "true"})
    assert reply.status_code == 400 and reply.text.startswith('<p class="error">') and "YYYY-MM" in reply.text


def test_signing_out_ends_the_session(gateway):
    member = gateway.person("member", organisation_id="org_a")
    _sign_in(gateway, member.email)
    csrf = _csrf(gateway)
    out = gateway.http.post("/app/logout", headers={**csrf, "HX-Request": "true"}, follow_redirects=False)
    assert out.status_code == 204 and out.headers["HX-Redirect"] == "/app/login"
    assert ("auth.logout", member.id) in gateway.audited()
    assert gateway.http.get("/app/overview", follow_redirects=False).status_code == 303


def test_the_audit_log_page_reads_its_filters_and_refuses_a_bad_day(gateway):
    viewer = gateway.person("viewer")
    _sign_in(gateway, viewer.email)
    bad = gateway.http.get("/app/operator/audit-log", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.text


def test_too_many_failed_sign_ins_answer_a_page_with_retry_after():
    from services.gateway.service.rate_limits import RateLimited

    class Refusing:
        async def check(self, source: str, email: str) -> None:
            decision = type("Decision", (), {"retry_after_seconds": 180})()
            raise RateLimited("too many failed sign-ins; try again in 180 s", decision)  # type: ignore[arg-type]

        async def failed(self, source: str, email: str) -> None: ...

        async def succeeded(self, source: str, email: str) -> None: ...

    gateway = Gateway(login_throttle=Refusing())
    member = gateway.person("member", organisation_id="org_a")
    reply = _sign_in(gateway, member.email)
    assert reply.status_code == 429 and reply.headers["retry-after"] == "180"
    assert "too many failed sign-ins" in reply.text and "<main" in reply.text
