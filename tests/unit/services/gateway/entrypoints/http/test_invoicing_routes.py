"""The catalog, invoice and pricing routes in front of fake stubs: what each sends to invoicing, what it answers,
what it audits, and who may call it."""

from __future__ import annotations

import pytest

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.errors import AlreadyExists, InvalidArgument, NotFound
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

JSON = {**ADMIN, "content-type": "application/json"}
PLAN_BODY = ('{"code": "standard", "name": "Standard", "terms": {"currency": "INR", "base_fee": 999.00, '
             '"charges": [{"metric_code": "api_calls", "charge": {"model": "graduated", "tiers": '
             '[{"up_to": 1e3, "unit_price": 0.1}, {"up_to": null, "unit_price": "0.05"}]}}]}}')


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _plan(plan_id: str = "plan_1") -> pb.Plan:
    return pb.Plan(id=plan_id, code="standard", name="Standard",
                   latest_version=pb.PlanVersion(id="pv_1", plan_id=plan_id, version=1,
                                                 terms=pb.PlanTerms(currency="INR", base_fee="999.00")))


def test_create_plan_reads_json_numbers_exactly_and_audits_once(gateway):
    gateway.invoicing.answer("CreatePlan", pb.CreatePlanResponse(plan=_plan(), created=True),
                             pb.CreatePlanResponse(plan=_plan(), created=False))
    first = gateway.http.post("/api/v1/admin/plans", content=PLAN_BODY, headers={**JSON, "Idempotency-Key": "k"})
    again = gateway.http.post("/api/v1/admin/plans", content=PLAN_BODY, headers={**JSON, "Idempotency-Key": "k"})
    assert first.status_code == again.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    sent = gateway.invoicing.requests["CreatePlan"][0]
    assert sent.idempotency_key == "k" and sent.terms.base_fee == "999.00"
    # 0.1 as a JSON number arrives as "0.1", not 0.1000000000000000055511151231257827.
    assert [(t.up_to, t.unit_price) for t in sent.terms.charges[0].charge.tiers] == [("1000", "0.1"), ("", "0.05")]
    assert first.json()["latest_version"]["terms"]["base_fee"] == "999.00"
    assert gateway.audited() == [("plan.create", "plan_1")]


def test_service_validation_comes_back_as_400_naming_the_field_in_the_body(gateway):
    # Invoicing validates the terms on their own: its paths start inside them.
    gateway.invoicing.answer("CreatePlan", InvalidArgument(
        "overlaps the tier before it: up_to must be above 1000", field="charges[0].charge.tiers[1].up_to"))
    response = gateway.http.post("/api/v1/admin/plans", content=PLAN_BODY, headers=JSON)
    assert response.status_code == 400
    assert response.json()["field"] == "terms.charges[0].charge.tiers[1].up_to"
    assert response.json()["detail"] == ("terms.charges[0].charge.tiers[1].up_to: overlaps the tier before it: "
                                         "up_to must be above 1000")
    assert gateway.audited() == []


def test_exchange_rate_effective_time_is_named_as_the_body_field(gateway):
    gateway.invoicing.answer("CreateExchangeRate", InvalidArgument("is in the future", field="effective_time"))
    response = gateway.http.post("/api/v1/admin/exchange-rates", headers=ADMIN, json={
        "base_currency": "USD", "quote_currency": "INR", "rate": "84.5", "source": "demo",
        "effective_at": "2999-01-01T00:00:00Z"})
    assert response.status_code == 400 and response.json()["field"] == "effective_at"


@pytest.mark.parametrize(("fragment", "replacement", "field"), [
    ('"unit_price": 0.1', '"unit_price": true', "terms.charges[0].charge.tiers[0].unit_price"),
    ('"unit_price": 0.1', '"unit_price": NaN', "terms.charges[0].charge.tiers[0].unit_price"),
    ('"model": "graduated"', '"model": "tiered"', "terms.charges[0].charge.model"),
    ('"currency": "INR"', '"currency": "INR", "colour": "red"', "terms.colour"),
])
def test_the_gateway_names_the_field_of_json_it_cannot_map(gateway, fragment, replacement, field):
    response = gateway.http.post("/api/v1/admin/plans", content=PLAN_BODY.replace(fragment, replacement),
                                 headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert "CreatePlan" not in gateway.invoicing.requests


def test_plan_code_taken_is_409_naming_code(gateway):
    gateway.invoicing.answer("CreatePlan", AlreadyExists("plan code 'standard' is taken", field="code"))
    response = gateway.http.post("/api/v1/admin/plans", content=PLAN_BODY, headers=JSON)
    assert response.status_code == 409 and response.json()["field"] == "code"


def test_list_plans_by_code_is_a_page_of_one_or_none(gateway):
    gateway.invoicing.answer("GetPlan", pb.GetPlanResponse(plan=_plan()), NotFound("no plan", field="code"))
    found = gateway.http.get("/api/v1/admin/plans", params={"code": "standard"}, headers=ADMIN).json()
    assert [p["id"] for p in found["data"]] == ["plan_1"]
    assert gateway.http.get("/api/v1/admin/plans", params={"code": "nope"}, headers=ADMIN).json()["data"] == []
    assert gateway.invoicing.requests["GetPlan"][0].code == "standard"


def test_new_version_subscription_change_and_cancel_are_audited(gateway):
    subscription = pb.Subscription(id="sub_1", organisation_id="org_1", state=pb.SUBSCRIPTION_STATE_ACTIVE)
    gateway.invoicing.answer("CreatePlanVersion", pb.CreatePlanVersionResponse(
        plan_version=pb.PlanVersion(id="pv_2", plan_id="plan_1", version=2), created=True))
    gateway.invoicing.answer("CreateSubscription", pb.CreateSubscriptionResponse(subscription=subscription,
                                                                                 created=True))
    gateway.invoicing.answer("ChangeSubscriptionPlan",
                             pb.ChangeSubscriptionPlanResponse(subscription=subscription, changed=True),
                             pb.ChangeSubscriptionPlanResponse(subscription=subscription, changed=False))
    gateway.invoicing.answer("CancelSubscription", pb.CancelSubscriptionResponse(subscription=subscription))
    http = gateway.http
    terms = {"terms": {"currency": "INR", "base_fee": "1099"}}
    refused = http.post("/api/v1/admin/plans/plan_1/versions", json=terms, headers=ADMIN)
    assert refused.status_code == 400 and refused.json()["field"] == "reason", "a price change says why"
    versioned = http.post("/api/v1/admin/plans/plan_1/versions", json={**terms, "reason": "new list prices"},
                          headers=ADMIN)
    assert versioned.status_code == 201
    created = http.post("/api/v1/admin/subscriptions", headers=ADMIN, json={
        "organisation_id": "org_1", "plan_code": "standard", "start_date": "2026-11-01"})
    assert created.status_code == 201 and created.json()["state"] == "active"
    change = {"plan_code": "enterprise", "effective_date": "2026-11-16"}
    assert http.post("/api/v1/admin/subscriptions/sub_1/change-plan", json=change, headers=ADMIN).status_code == 200
    repeat = http.post("/api/v1/admin/subscriptions/sub_1/change-plan", json=change, headers=ADMIN)
    assert repeat.headers["idempotent-replayed"] == "true"
    assert http.post("/api/v1/admin/subscriptions/sub_1/cancel", headers=ADMIN).status_code == 200
    assert http.post("/api/v1/admin/subscriptions/sub_1/cancel", json={"at_period_end": False},
                     headers=ADMIN).status_code == 200
    assert [r.at_period_end for r in gateway.invoicing.requests["CancelSubscription"]] == [True, False]
    assert gateway.invoicing.requests["CreatePlanVersion"][0].plan_id == "plan_1"
    assert gateway.invoicing.requests["ChangeSubscriptionPlan"][0].effective_date == "2026-11-16"
    assert gateway.audited() == [
        ("plan_version.create", "pv_2"), ("subscription.create", "sub_1"), ("subscription.change_plan", "sub_1"),
        ("subscription.cancel", "sub_1"), ("subscription.cancel", "sub_1")]


def test_invoice_run_answers_202_and_passes_the_idempotency_key(gateway):
    run = pb.InvoiceRun(id="run_1", period_key="2026-10", state=pb.INVOICE_RUN_STATE_RUNNING)
    gateway.invoicing.answer("StartInvoiceRun", pb.StartInvoiceRunResponse(invoice_run=run, created=True))
    response = gateway.http.post("/api/v1/admin/invoice-runs", json={"period_key": "2026-10"},
                                 headers={**ADMIN, "Idempotency-Key": "close-2026-10"})
    assert response.status_code == 202 and response.json()["state"] == "running"
    sent = gateway.invoicing.requests["StartInvoiceRun"][0]
    assert (sent.period_key, sent.organisation_id, sent.idempotency_key) == ("2026-10", "", "close-2026-10")
    assert gateway.audited() == [("invoice_run.start", "run_1")]


def test_invoice_list_filters_map_to_the_request(gateway):
    gateway.invoicing.answer("ListInvoices", pb.ListInvoicesResponse(next_page_token="t2"))
    page = gateway.http.get("/api/v1/admin/invoices", headers=ADMIN, params={
        "organisation_id": "org_1", "status": "issued", "period_key": "2026-10", "page_size": 10})
    assert page.json() == {"data": [], "next_page_token": "t2"}
    sent = gateway.invoicing.requests["ListInvoices"][0]
    assert (sent.organisation_id, sent.status, sent.period_key, sent.page_size) == (
        "org_1", pb.INVOICE_STATUS_ISSUED, "2026-10", 10)
    bad = gateway.http.get("/api/v1/admin/invoices", headers=ADMIN, params={"status": "lost"})
    assert bad.status_code == 400 and bad.json()["field"] == "status"


def test_pdf_is_an_attachment_with_the_service_filename(gateway):
    gateway.invoicing.answer("RenderInvoice", pb.RenderInvoiceResponse(
        content_type="application/pdf", content=b"%PDF-1.4 ...", filename="INV-2627-00001.pdf"))
    response = gateway.http.get("/api/v1/admin/invoices/inv_1/pdf", headers=ADMIN)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="INV-2627-00001.pdf"'
    assert gateway.invoicing.requests["RenderInvoice"][0].format == pb.INVOICE_FORMAT_PDF


def test_an_unsafe_filename_is_replaced_by_the_invoice_id(gateway):
    gateway.invoicing.answer("RenderInvoice", pb.RenderInvoiceResponse(content=b"%PDF", filename='a"b\r\n.pdf'))
    response = gateway.http.get("/api/v1/admin/invoices/inv_1/pdf", headers=ADMIN)
    assert response.headers["content-disposition"] == 'attachment; filename="inv_1.pdf"'


def test_html_view(gateway):
    gateway.invoicing.answer("RenderInvoice", pb.RenderInvoiceResponse(
        content_type="text/html; charset=utf-8", content=b"<html>INV/2627/00001</html>"))
    response = gateway.http.get("/api/v1/admin/invoices/inv_1/html", headers=ADMIN)
    assert response.headers["content-type"] == "text/html; charset=utf-8" and "INV/2627/00001" in response.text
    assert gateway.invoicing.requests["RenderInvoice"][0].format == pb.INVOICE_FORMAT_HTML


def test_reissue_is_201_then_a_replay(gateway):
    gateway.invoicing.answer("ReissueInvoice",
                             pb.ReissueInvoiceResponse(invoice=pb.Invoice(id="inv_2", currency="INR"), created=True),
                             pb.ReissueInvoiceResponse(invoice=pb.Invoice(id="inv_2", currency="INR"), created=False))
    first = gateway.http.post("/api/v1/admin/invoices/inv_1/reissue", headers=ADMIN)
    again = gateway.http.post("/api/v1/admin/invoices/inv_1/reissue", headers=ADMIN)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == "inv_2"
    assert gateway.audited() == [("invoice.reissue", "inv_2")]


def test_admin_routes_refuse_a_project_key(gateway):
    gateway.add_key("bk_key", "org_1")
    for method, path in (("GET", "/api/v1/admin/plans"), ("POST", "/api/v1/admin/invoice-runs"),
                         ("GET", "/api/v1/admin/invoices/inv_1/pdf"), ("GET", "/api/v1/admin/exchange-rates")):
        response = gateway.http.request(method, path, headers={"Authorization": "Bearer bk_key"})
        assert response.status_code == 401, (method, path)


def _issued(invoice_id: str, organisation_id: str, status: int = pb.INVOICE_STATUS_ISSUED) -> pb.Invoice:
    return pb.Invoice(id=invoice_id, organisation_id=organisation_id, status=status, currency="INR")


def test_a_key_sees_only_its_organisations_invoices(gateway):
    gateway.add_key("bk_mine", "org_1")
    key = {"Authorization": "Bearer bk_mine"}
    gateway.invoicing.answer("GetInvoice", pb.GetInvoiceResponse(invoice=_issued("inv_other", "org_2")))
    other = gateway.http.get("/api/v1/invoices/inv_other", headers=key)
    pdf = gateway.http.get("/api/v1/invoices/inv_other/pdf", headers=key)
    assert other.status_code == pdf.status_code == 404
    assert "RenderInvoice" not in gateway.invoicing.requests  # nothing rendered for another organisation

    gateway.invoicing.replies["GetInvoice"].clear()
    gateway.invoicing.answer("GetInvoice", NotFound("invoice inv_gone not found", field="invoice_id"))
    missing = gateway.http.get("/api/v1/invoices/inv_gone", headers=key)
    assert missing.status_code == 404 and missing.json()["detail"] == other.json()["detail"].replace(
        "inv_other", "inv_gone")  # indistinguishable from another organisation's

    gateway.invoicing.replies["GetInvoice"].clear()
    gateway.invoicing.answer("GetInvoice", pb.GetInvoiceResponse(invoice=_issued("inv_1", "org_1")))
    gateway.invoicing.answer("RenderInvoice", pb.RenderInvoiceResponse(content=b"%PDF-1.4", filename="x.pdf"))
    assert gateway.http.get("/api/v1/invoices/inv_1", headers=key).json()["id"] == "inv_1"
    assert gateway.http.get("/api/v1/invoices/inv_1/pdf", headers=key).content == b"%PDF-1.4"


def test_a_key_lists_its_organisation_without_drafts(gateway):
    gateway.add_key("bk_mine", "org_1")
    gateway.invoicing.answer("ListInvoices", pb.ListInvoicesResponse(invoices=[
        _issued("inv_3", "org_1", pb.INVOICE_STATUS_DRAFT), _issued("inv_2", "org_1"),
        _issued("inv_1", "org_1", pb.INVOICE_STATUS_PAID)]))
    page = gateway.http.get("/api/v1/invoices", headers={"Authorization": "Bearer bk_mine"},
                            params={"organisation_id": "org_2"}).json()  # an unknown parameter changes nothing
    assert [i["id"] for i in page["data"]] == ["inv_2", "inv_1"]
    assert gateway.invoicing.requests["ListInvoices"][0].organisation_id == "org_1"


def test_projected_invoice_for_the_key_and_for_the_admin(gateway):
    gateway.add_key("bk_mine", "org_1")
    gateway.invoicing.answer("GetProjectedInvoice", pb.GetProjectedInvoiceResponse(
        invoice=pb.Invoice(organisation_id="org_1", currency="INR", total_minor=117882, projected=True)))
    mine = gateway.http.get("/api/v1/projected-invoice", headers={"Authorization": "Bearer bk_mine"})
    admin = gateway.http.get("/api/v1/admin/organisations/org_7/projected-invoice", headers=ADMIN)
    assert mine.json()["total"] == "1178.82" and mine.json()["projected"] is True and admin.status_code == 200
    assert [r.organisation_id for r in gateway.invoicing.requests["GetProjectedInvoice"]] == ["org_1", "org_7"]
    assert gateway.http.get("/api/v1/projected-invoice").status_code == 401


def test_the_projected_invoice_carries_the_forecast_unless_asked_not_to(gateway):
    gateway.add_key("bk_mine", "org_1")
    gateway.invoicing.answer("GetProjectedInvoice", pb.GetProjectedInvoiceResponse(
        invoice=pb.Invoice(organisation_id="org_1", currency="INR", total_minor=186086, projected=True),
        forecast=pb.InvoiceForecast(
            method=pb.FORECAST_METHOD_DAILY_TREND, days_in_period=30, days_elapsed="10.5", days_observed=10,
            window_days=7, invoice=pb.Invoice(organisation_id="org_1", currency="INR", total_minor=271224,
                                              projected=True),
            metrics=[pb.MetricForecast(metric_code="api_calls", aggregation="sum", quantity_so_far="17900",
                                       projected_quantity="53975", daily_rate="1850", days_left="19.5",
                                       extrapolated=True)])))
    mine = gateway.http.get("/api/v1/projected-invoice", headers={"Authorization": "Bearer bk_mine"}).json()
    assert mine["total"] == "1860.86" and mine["forecast"]["invoice"]["total"] == "2712.24"
    assert (mine["forecast"]["method"], mine["forecast"]["days_observed"], mine["forecast"]["window_days"]) == (
        "daily_trend", 10, 7)
    assert mine["forecast"]["metrics"][0]["projected_quantity"] == "53975"
    admin = gateway.http.get("/api/v1/admin/organisations/org_1/projected-invoice?forecast=false", headers=ADMIN)
    assert admin.status_code == 200
    assert [r.include_forecast for r in gateway.invoicing.requests["GetProjectedInvoice"]] == [True, False]


QUOTE = ('{"currency": "INR", "charge": {"model": "percentage", "rate": 2.5, "fixed_fee_per_event": 3}, '
         '"quantity": 1500, "event_amounts": ["100.50", 2500.10]}')


def test_quote_with_the_admin_token_or_a_project_key_but_not_without(gateway):
    gateway.add_key("bk_any", "org_1")
    gateway.invoicing.answer("QuotePrice", pb.QuotePriceResponse(currency="INR", amount="71.0150",
                                                                 usage_minor=7102, total_minor=7102))
    for headers in (ADMIN, {"Authorization": "Bearer bk_any"}, {"X-Api-Key": "bk_any"}):
        response = gateway.http.post("/api/v1/pricing/quote", content=QUOTE,
                                     headers={**headers, "content-type": "application/json"})
        assert response.status_code == 200, response.text
        assert (response.json()["total"], response.json()["total_minor"]) == ("71.02", 7102)
    sent = gateway.invoicing.requests["QuotePrice"][0]
    assert (sent.charge.rate, sent.charge.fixed_fee_per_event, sent.quantity, list(sent.event_amounts)) == (
        "2.5", "3", "1500", ["100.50", "2500.10"])  # 2500.10 kept its trailing zero: read as text, exactly
    for headers in ({}, {"Authorization": "Bearer bk_unknown"}):
        refused = gateway.http.post("/api/v1/pricing/quote", content=QUOTE,
                                    headers={**headers, "content-type": "application/json"})
        assert refused.status_code == 401
    assert len(gateway.invoicing.requests["QuotePrice"]) == 3


def test_quote_event_amount_that_is_not_a_number_names_its_index(gateway):
    response = gateway.http.post("/api/v1/pricing/quote", headers=ADMIN, json={
        "currency": "INR", "charge": {"model": "percentage", "rate": "1"}, "event_amounts": ["1", True]})
    assert response.status_code == 400 and response.json()["field"] == "event_amounts[1]"


def test_openapi_documents_the_new_routes_with_summaries(gateway):
    document = gateway.http.get("/openapi.json").json()
    paths = document["paths"]
    for path, method in (("/api/v1/admin/plans", "post"), ("/api/v1/admin/invoice-runs", "post"),
                         ("/api/v1/admin/invoices/{invoice_id}/pdf", "get"), ("/api/v1/pricing/quote", "post"),
                         ("/api/v1/invoices", "get"), ("/api/v1/projected-invoice", "get"),
                         ("/api/v1/admin/exchange-rates", "post"),
                         ("/api/v1/admin/subscriptions/{subscription_id}/change-plan", "post")):
        assert paths[path][method]["summary"], (path, method)
    assert "application/pdf" in paths["/api/v1/admin/invoices/{invoice_id}/pdf"]["get"]["responses"]["200"][
        "content"]


def test_every_answer_carries_the_callers_request_id_or_a_new_one(gateway):
    gateway.invoicing.answer("GetInvoice", NotFound("no invoice with id 'inv_x'"))
    given = gateway.http.get("/api/v1/admin/invoices/inv_x", headers={**ADMIN, "X-Request-Id": "req-from-caller-1"})
    made = gateway.http.get("/api/v1/admin/invoices/inv_y", headers=ADMIN)
    assert given.status_code == 404 and given.headers["x-request-id"] == "req-from-caller-1"
    assert len(made.headers["x-request-id"]) == 32
