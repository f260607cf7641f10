"""billing reconciliation usage without a server: what each command sends to the gateway and how it reads the
answer. The gateway's HTTP is replaced by a recorder."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from billing_cli.reconciliation import USAGE_RUN_TIMEOUT_SECONDS, previous_hour
from tests.unit.billing_cli.recorder import billing

URL = "http://gateway.test/api/v1/admin/usage-reconciliations"
ROW = {"kind": "missing_events", "organisation_id": "org_1", "project_id": "prj_1", "metric": "",
       "period_start": "2026-03-01T10:00:00Z", "expected": "5", "found": "4", "detail": "missing e.g. a2"}


def _report(*rows: dict, status: str = "discrepancies", count: int | None = None, error: str = "") -> dict:
    return {"id": "urec_1", "trigger": "on_demand", "start_time": "2026-03-01T10:00:00Z",
            "end_time": "2026-03-01T11:00:00Z", "status": status, "started_at": "2026-03-01T11:05:00Z",
            "finished_at": "2026-03-01T11:05:01Z", "messages_read": 3, "accepted_events": 8, "stored_events": 7,
            "missing_events": 1, "aggregate_mismatches": 0,
            "discrepancy_count": len(rows) if count is None else count, "error": error, "discrepancies": list(rows)}


def test_the_default_window_is_the_previous_full_hour():
    assert previous_hour(datetime(2026, 3, 1, 11, 7, tzinfo=UTC)) == (
        datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 11, tzinfo=UTC))


def test_run_posts_the_window_prints_what_it_found_and_exits_1(gateway):
    gateway.answer(201, _report(ROW, count=1_200))
    code, out = billing("reconciliation", "usage", "run", "--from", "2026-03-01T10:00:00", "--to",
                        "2026-03-01T11:00:00+00:00")
    assert code == 1, out
    sent = gateway.sent[0]
    assert (sent["method"], sent["url"]) == ("POST", URL)
    assert sent["json"] == {"start_time": "2026-03-01T10:00:00+00:00", "end_time": "2026-03-01T11:00:00+00:00"}
    assert "missing e.g. a2" in out and "the first 1 of 1200" in out and "1 missing" in out
    assert USAGE_RUN_TIMEOUT_SECONDS > 300


def test_a_clean_run_exits_0_and_metering_behind_exits_1(gateway):
    gateway.answer(201, _report(status="clean"))
    gateway.answer(201, _report(status="metering_behind"))
    code, out = billing("reconciliation", "usage", "run")
    assert code == 0 and "clean: no discrepancies" in out
    code, out = billing("reconciliation", "usage", "run")
    assert code == 1 and "nothing concluded" in out
    code, out = billing("reconciliation", "usage", "run", "--from", "2026-03-01")
    assert code == 1 and "together" in out and len(gateway.sent) == 2


def test_list_and_show(gateway):
    gateway.answer(200, {"data": [_report(count=1)], "next_page_token": ""})
    code, out = billing("reconciliation", "usage", "list", "--limit", "5", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["urec_1"]
    assert gateway.sent[0]["url"] == URL and gateway.sent[0]["params"] == {"page_size": 5}
    gateway.answer(200, _report(ROW))
    code, out = billing("reconciliation", "usage", "show", "urec_1")
    assert code == 0 and gateway.sent[1]["url"] == f"{URL}/urec_1" and "prj_1" in out
