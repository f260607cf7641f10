"""The usage reconciliation routes in front of a fake metering: the window sent (RFC 3339 with a zone), the report
and its discrepancies answered, the list paged, what is audited, and the OpenAPI document."""

from __future__ import annotations

import pytest

from billing.metering.v1 import metering_pb2 as pb
from billing_runtime.errors import InvalidArgument, NotFound
from services.gateway.entrypoints.http.metering import USAGE_RECONCILIATION_TIMEOUT_SECONDS
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway

RUNS = "/api/v1/admin/usage-reconciliations"
WINDOW = {"start_time": "2026-11-04T15:30:00+05:30", "end_time": "2026-11-04T16:30:00+05:30"}


@pytest.fixture
def gateway() -> Gateway:
    return Gateway()


def _report(with_rows: bool = True) -> pb.UsageReconciliation:
    report = pb.UsageReconciliation(
        id="urec_1", trigger="on_demand", status="discrepancies", messages_read=3, accepted_events=8,
        stored_events=7, missing_events=1, aggregate_mismatches=0, discrepancy_count=1,
    )
    report.start_time.FromSeconds(1_793_788_200)
    report.end_time.FromSeconds(1_793_791_800)
    report.started_time.FromSeconds(1_793_791_900)
    report.finished_time.FromSeconds(1_793_791_901)
    if with_rows:
        row = report.discrepancies.add(kind="missing_events", organisation_id="org_1", project_id="prj_1",
                                       expected="5", found="4", detail="missing e.g. a2")
        row.period_start.FromSeconds(1_793_786_400)
    return report


def test_a_run_sends_the_window_and_answers_the_report(gateway):
    gateway.metering.answer("RunUsageReconciliation", pb.RunUsageReconciliationResponse(reconciliation=_report()))
    response = gateway.http.post(RUNS, headers=ADMIN, json=WINDOW)
    assert response.status_code == 201, response.text
    sent = gateway.metering.requests["RunUsageReconciliation"][0]
    assert (sent.start_time.ToJsonString(), sent.end_time.ToJsonString()) == ("2026-11-04T10:00:00Z",
                                                                              "2026-11-04T11:00:00Z")
    body = response.json()
    assert (body["id"], body["status"], body["accepted_events"], body["missing_events"]) == (
        "urec_1", "discrepancies", 8, 1)
    (row,) = body["discrepancies"]
    assert (row["kind"], row["project_id"], row["expected"], row["found"], row["detail"]) == (
        "missing_events", "prj_1", "5", "4", "missing e.g. a2")
    assert gateway.audited() == [("usage_reconciliation.run", "urec_1")]
    assert USAGE_RECONCILIATION_TIMEOUT_SECONDS >= 120


@pytest.mark.parametrize(("body", "field"), [
    ({"start_time": "2026-11-04T10:00:00"}, "start_time"),  # no zone
    ({"end_time": None}, "end_time"),
])
def test_a_window_without_a_zone_is_400_before_metering_is_asked(gateway, body, field):
    response = gateway.http.post(RUNS, headers=ADMIN, json={**WINDOW, **body})
    assert response.status_code == 400 and response.json()["field"] == field, response.text
    assert gateway.metering.requests == {}


def test_metering_refusals_pass_through(gateway):
    gateway.metering.answer("RunUsageReconciliation", InvalidArgument("must be at most 24 hours after start_time",
                                                                      field="end_time"))
    response = gateway.http.post(RUNS, headers=ADMIN, json=WINDOW)
    assert response.status_code == 400 and response.json()["field"] == "end_time"
    gateway.metering.answer("GetUsageReconciliation", NotFound("no usage reconciliation with this id"))
    assert gateway.http.get(f"{RUNS}/urec_9", headers=ADMIN).status_code == 404
    assert gateway.audited() == []


def test_list_pages_and_show_returns_the_rows(gateway):
    gateway.metering.answer("ListUsageReconciliations", pb.ListUsageReconciliationsResponse(
        reconciliations=[_report(with_rows=False)], next_page_token="urec_1"))
    listed = gateway.http.get(RUNS, headers=ADMIN, params={"page_size": 1, "page_token": "urec_2"})
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()["data"]] == ["urec_1"] and listed.json()["next_page_token"] == "urec_1"
    sent = gateway.metering.requests["ListUsageReconciliations"][0]
    assert (sent.page_size, sent.page_token) == (1, "urec_2")
    gateway.metering.answer("GetUsageReconciliation", pb.GetUsageReconciliationResponse(reconciliation=_report()))
    shown = gateway.http.get(f"{RUNS}/urec_1", headers=ADMIN)
    assert shown.status_code == 200 and len(shown.json()["discrepancies"]) == 1
    assert gateway.metering.requests["GetUsageReconciliation"][0].id == "urec_1"


def test_the_routes_need_an_admin_and_are_documented(gateway):
    assert gateway.http.get(RUNS).status_code == 401
    paths = gateway.http.get("/openapi.json").json()["paths"]
    assert {"post", "get"} <= set(paths[RUNS]) and "get" in paths[RUNS + "/{reconciliation_id}"]
