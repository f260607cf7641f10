"""The reconciliation routes in front of fake stubs: the window sent to payments (RFC 3339 with a zone), the run
and its discrepancies answered, the filters and paging of the lists, and what is audited."""

from __future__ import annotations

import pytest

from billing.payments.v1 import payments_pb2 as pb
from billing_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.gateway.entrypoints.http.reconciliation import RECONCILIATION_TIMEOUT_SECONDS
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

RUNS = "/api/v1/admin/reconciliation-runs"
WINDOW = {"start_time": "2026-11-04T00:00:00+05:30", "end_time": "2026-11-05T00:00:00+05:30"}


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _run(found: int = 1, state: int = pb.RECONCILIATION_STATE_COMPLETED) -> pb.ReconciliationRun:
    run = pb.ReconciliationRun(id="rec_1", state=state, trigger="manual", payments_checked=5, refunds_checked=2,
                               discrepancies=found)
    run.start_time.FromSeconds(1_793_730_600)
    run.end_time.FromSeconds(1_793_817_000)
    return run


def _discrepancy(resolved: bool = False) -> pb.Discrepancy:
    return pb.Discrepancy(id="dsc_1", run_id="rec_1", kind=pb.DISCREPANCY_KIND_AMOUNT_MISMATCH, object_type="payment",
                          provider_id="pay_1", our_id="pmt_1",
                          detail="amount: ours 117882, the provider's 100000 minor units",
                          ours="captured INR 117882", theirs="captured INR 100000", resolved=resolved,
                          resolution="Refunded at the provider" if resolved else "")


def test_a_run_sends_the_window_and_answers_what_it_found(gateway):
    gateway.payments.answer("RunReconciliation", pb.RunReconciliationResponse(run=_run(),
                                                                              discrepancies=[_discrepancy()]))
    response = gateway.http.post(RUNS, headers=ADMIN, json=WINDOW)
    assert response.status_code == 201, response.text
    sent = gateway.payments.requests["RunReconciliation"][0]
    assert (sent.start_time.ToJsonString(), sent.end_time.ToJsonString()) == ("2026-11-03T18:30:00Z",
                                                                              "2026-11-04T18:30:00Z")
    body = response.json()
    assert (body["id"], body["state"], body["trigger"], body["discrepancy_count"]) == (
        "rec_1", "completed", "manual", 1)
    assert (body["start_time"], body["payments_checked"], body["refunds_checked"]) == ("2026-11-03T18:30:00Z", 5, 2)
    (found,) = body["discrepancies"]
    assert (found["kind"], found["provider_id"], found["our_id"], found["resolved"]) == (
        "amount_mismatch", "pay_1", "pmt_1", False)
    assert found["detail"] == "amount: ours 117882, the provider's 100000 minor units"
    assert gateway.audited() == [("reconciliation.run", "rec_1")]


def test_a_run_is_given_longer_than_a_lookup():
    assert RECONCILIATION_TIMEOUT_SECONDS >= 60


@pytest.mark.parametrize(("body", "field"), [
    ({"start_time": "2026-11-04T00:00:00"}, "start_time"),  # no zone: which midnight?
    ({"start_time": "yesterday"}, "start_time"),
    ({"end_time": None}, "end_time"),
    ({"colour": "red"}, "colour"),
])
def test_a_window_that_is_not_rfc_3339_with_a_zone_is_400_before_payments_is_asked(gateway, body, field):
    response = gateway.http.post(RUNS, headers=ADMIN, json={**WINDOW, **body})
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert gateway.payments.requests == {}


def test_payments_refusals_of_the_window_pass_through(gateway):
    gateway.payments.answer("RunReconciliation", InvalidArgument("the window may be at most 31 days", field="end_time"),
                            FailedPrecondition("online payments are not configured (no Razorpay keys): pay offline"))
    too_long = gateway.http.post(RUNS, headers=ADMIN, json=WINDOW)
    assert too_long.status_code == 400 and too_long.json()["field"] == "end_time"
    again = gateway.http.post(RUNS, headers=ADMIN, json=WINDOW)
    assert again.status_code == 422 and "not configured" in again.json()["detail"]
    assert gateway.audited() == []


def test_a_failed_run_says_why(gateway):
    run = _run(found=0, state=pb.RECONCILIATION_STATE_FAILED)
    run.error = "the provider could not be read: timed out"
    gateway.payments.answer("RunReconciliation", pb.RunReconciliationResponse(run=run))
    body = gateway.http.post(RUNS, headers=ADMIN, json=WINDOW).json()
    assert (body["state"], body["error"], body["discrepancies"]) == ("failed", run.error, [])


def test_runs_are_listed_and_got(gateway):
    gateway.payments.answer("ListReconciliationRuns", pb.ListReconciliationRunsResponse(runs=[_run()],
                                                                                        next_page_token="t2"))
    gateway.payments.answer("GetReconciliationRun", pb.GetReconciliationRunResponse(
        run=_run(), discrepancies=[_discrepancy(resolved=True)]), NotFound("no reconciliation run with id 'rec_9'"))
    page = gateway.http.get(RUNS, headers=ADMIN, params={"page_size": 10, "page_token": "t1"}).json()
    assert page["next_page_token"] == "t2" and page["data"][0]["id"] == "rec_1"
    assert "discrepancies" not in page["data"][0]  # a list has the counts; get a run for what it found
    sent = gateway.payments.requests["ListReconciliationRuns"][0]
    assert (sent.page_size, sent.page_token) == (10, "t1")
    one = gateway.http.get(f"{RUNS}/rec_1", headers=ADMIN).json()
    assert one["discrepancies"][0]["resolution"] == "Refunded at the provider"
    assert gateway.payments.requests["GetReconciliationRun"][0].run_id == "rec_1"
    assert gateway.http.get(f"{RUNS}/rec_9", headers=ADMIN).status_code == 404


def test_discrepancies_are_open_ones_unless_resolved_are_asked_for(gateway):
    gateway.payments.answer("ListDiscrepancies", pb.ListDiscrepanciesResponse(discrepancies=[_discrepancy()]))
    gateway.http.get("/api/v1/admin/discrepancies", headers=ADMIN)
    gateway.http.get("/api/v1/admin/discrepancies", headers=ADMIN, params={"include_resolved": "true"})
    assert [r.include_resolved for r in gateway.payments.requests["ListDiscrepancies"]] == [False, True]


def test_resolving_sends_the_note_and_is_audited(gateway):
    gateway.payments.answer("ResolveDiscrepancy", pb.ResolveDiscrepancyResponse(discrepancy=_discrepancy(True)),
                            InvalidArgument("is required: say what was done (at most 500 characters)",
                                            field="resolution"))
    response = gateway.http.post("/api/v1/admin/discrepancies/dsc_1/resolve", headers=ADMIN,
                                 json={"resolution": "Refunded at the provider"})
    assert response.status_code == 200 and response.json()["resolved"] is True
    sent = gateway.payments.requests["ResolveDiscrepancy"][0]
    assert (sent.discrepancy_id, sent.resolution) == ("dsc_1", "Refunded at the provider")
    blank = gateway.http.post("/api/v1/admin/discrepancies/dsc_1/resolve", headers=ADMIN, json={"resolution": " "})
    assert blank.status_code == 400 and blank.json()["field"] == "resolution"
    missing = gateway.http.post("/api/v1/admin/discrepancies/dsc_1/resolve", headers=ADMIN, json={})
    assert missing.status_code == 400 and missing.json()["field"] == "resolution"
    assert gateway.audited() == [("discrepancy.resolve", "dsc_1")]


def test_reconciliation_routes_need_the_admin_token_and_are_documented(gateway):
    routes = [(RUNS, "post"), (RUNS, "get"), (f"{RUNS}/{{run_id}}", "get"), ("/api/v1/admin/discrepancies", "get"),
              ("/api/v1/admin/discrepancies/{discrepancy_id}/resolve", "post")]
    for path, method in routes:
        assert gateway.http.request(method, path.replace("{run_id}", "r").replace("{discrepancy_id}", "d"),
                                    json={}).status_code == 401, path
    assert gateway.payments.requests == {}
    paths = gateway.http.get("/openapi.json").json()["paths"]
    for path, method in routes:
        operation = paths[f"/api/v1/admin{path.removeprefix('/api/v1/admin')}"][method]
        assert operation["summary"] and operation["description"] and operation["tags"] == ["payments"]
        assert {"400", "401", "404", "422"} <= set(operation["responses"]), (path, method)
