"""billing dunning | reconciliation without a server: what each command sends to the gateway, how it reads the
answer, and the exit status a cron job sees. The commands against real services are in
tests/integration/gateway/test_cli_dunning_reconciliation.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from billing_cli.connection import CliError
from billing_cli.dunning import describe_schedule, duration
from billing_cli.reconciliation import RUN_TIMEOUT_SECONDS, window
from tests.unit.billing_cli.recorder import billing

RUNS = "http://gateway.test/api/v1/admin/reconciliation-runs"
POLICY = {"max_attempts": 3, "retry_days": [1, 3, 7], "base_seconds": 86400, "factor": "2", "cap_seconds": 1209600}
BACKOFF = {**POLICY, "retry_days": [], "base_seconds": 5400, "factor": "1.5"}
DISCREPANCY = {"id": "dsc_1", "run_id": "rec_1", "kind": "amount_mismatch", "object_type": "payment",
               "provider_id": "pay_1", "our_id": "pmt_1",
               "detail": "amount: ours 117882, the provider's 100000 minor units", "ours": "", "theirs": "",
               "resolved": False, "resolution": "", "created_at": None, "resolved_at": None}


def _run(*found: dict, state: str = "completed", error: str = "") -> dict:
    return {"id": "rec_1", "state": state, "trigger": "manual", "start_time": "2026-11-04T00:00:00Z",
            "end_time": "2026-11-05T00:00:00Z", "payments_checked": 5, "refunds_checked": 1,
            "discrepancy_count": len(found), "error": error, "created_at": None, "finished_at": None,
            "discrepancies": list(found)}


# --- dunning -------------------------------------------------------------------------------------------------


def test_durations_and_schedules_read_as_an_operator_says_them():
    assert [duration(s) for s in (86400, 5400, 90, 0, 1209600)] == ["1d", "1h30m", "1m30s", "0s", "14d"]
    assert describe_schedule(POLICY) == "days 1, 3, 7 after the due date"
    assert describe_schedule(BACKOFF) == "after 1h30m, then x1.5 each time, at most 14d apart"
    assert describe_schedule({**POLICY, "max_attempts": 0}) == "no retries: uncollectible once overdue"


def test_dunning_show(gateway):
    gateway.answer(200, {"invoice_id": "inv_1", "state": "retrying", "attempts": 2, "policy": POLICY,
                         "due_at": "2026-11-15T18:30:00Z", "next_at": "2026-11-22T18:30:00Z",
                         "reason": "no payment link: refused"})
    code, out = billing("dunning", "show", "inv_1")
    assert code == 0, out
    assert gateway.sent[0]["url"] == "http://gateway.test/api/v1/admin/invoices/inv_1/dunning"
    assert "retrying" in out and "2 of 3" in out and "days 1, 3, 7 after the due date" in out
    assert "2026-11-22T18:30:00Z" in out and "Reason: no payment link: refused" in out


def test_dunning_policy_shows_sets_and_clears(gateway):
    own = {"organisation_id": "org_1", "own": True, "policy": POLICY}
    gateway.answer(200, {**own, "own": False, "policy": BACKOFF})
    gateway.answer(200, own)
    gateway.answer(200, {**own, "own": False})
    code, out = billing("dunning", "policy", "org_1")
    assert code == 0 and "default" in out and "at most 14d apart" in out, out
    code, out = billing("dunning", "policy", "org_1", "--set", "--retry-days", "1,3,7")
    assert code == 0 and "Dunning policy set" in out and "own" in out, out
    code, out = billing("dunning", "policy", "org_1", "--clear", "--json")
    assert code == 0 and json.loads(out)["own"] is False
    path = "http://gateway.test/api/v1/admin/organisations/org_1/dunning-policy"
    assert [(s["method"], s["url"]) for s in gateway.sent] == [("GET", path), ("PUT", path), ("DELETE", path)]
    # max_attempts follows the days given; backoff fields left to payments' defaults.
    assert gateway.sent[1]["json"] == {"max_attempts": 3, "retry_days": [1, 3, 7], "base_seconds": 0, "factor": "",
                                       "cap_seconds": 0}


def test_a_backoff_policy_sends_its_factor_as_typed(gateway):
    gateway.answer(200, {"organisation_id": "org_1", "own": True, "policy": BACKOFF})
    code, out = billing("dunning", "policy", "org_1", "--set", "--max-attempts", "4", "--base-seconds", "3600",
                        "--factor", "1.5", "--cap-seconds", "86400")
    assert code == 0, out
    assert gateway.sent[0]["json"] == {"max_attempts": 4, "retry_days": [], "base_seconds": 3600, "factor": "1.5",
                                       "cap_seconds": 86400}


@pytest.mark.parametrize(("args", "says"), [
    (["--max-attempts", "3"], "pass --set"),
    (["--set", "--clear"], "choose one"),
    (["--set"], "--set needs --max-attempts"),
    (["--set", "--retry-days", "1,three"], "whole days separated by commas"),
])
def test_dunning_policy_options_that_do_not_go_together_are_refused_before_asking(gateway, args, says):
    code, out = billing("dunning", "policy", "org_1", *args)
    assert code == 1 and says in out and gateway.sent == []


def test_the_gateways_refusal_of_a_policy_names_the_field(gateway):
    gateway.answer(400, {"error": "invalid_argument", "field": "retry_days",
                         "detail": "retry_days: must give one day per attempt (as many as max_attempts)"})
    code, out = billing("dunning", "policy", "org_1", "--set", "--max-attempts", "2", "--retry-days", "1")
    assert (code, out) == (1, "400: retry_days: must give one day per attempt (as many as max_attempts)")


# --- reconciliation ------------------------------------------------------------------------------------------


def test_the_default_window_is_yesterday_in_utc():
    now = datetime(2026, 11, 5, 2, 0, tzinfo=UTC)
    assert window("", "", now) == (datetime(2026, 11, 4, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    start, end = window("2026-11-01", "2026-11-03T00:00:00+05:30", now)
    assert (start.isoformat(), end.isoformat()) == ("2026-11-01T00:00:00+00:00", "2026-11-03T00:00:00+05:30")
    with pytest.raises(CliError, match="together"):
        window("2026-11-01", "", now)
    with pytest.raises(CliError, match="--to must be ISO 8601"):
        window("2026-11-01", "tomorrow", now)


def test_a_clean_run_says_so_and_exits_0(gateway):
    gateway.answer(201, _run())
    code, out = billing("reconciliation", "run", "--from", "2026-11-04", "--to", "2026-11-05")
    assert code == 0 and "clean: no discrepancies" in out, out
    assert "5 payment(s) and 1 refund(s) checked" in out
    (sent,) = gateway.sent
    assert (sent["method"], sent["url"]) == ("POST", RUNS)
    assert sent["json"] == {"start_time": "2026-11-04T00:00:00+00:00", "end_time": "2026-11-05T00:00:00+00:00"}
    assert sent["timeout"] == RUN_TIMEOUT_SECONDS > 120  # longer than the gateway waits for payments


def test_a_run_with_discrepancies_prints_them_and_exits_1_for_cron(gateway):
    gateway.answer(201, _run(DISCREPANCY))
    gateway.answer(201, _run(DISCREPANCY))
    code, out = billing("reconciliation", "run")
    assert code == 1 and "amount_mismatch" in out and "ours 117882, the provider's 100000" in out, out
    assert "billing reconciliation resolve ID" in out
    code, out = billing("reconciliation", "run", "--json")
    assert code == 1 and json.loads(out)["discrepancies"][0]["id"] == "dsc_1"


def test_a_run_that_could_not_read_the_provider_exits_1_saying_why(gateway):
    gateway.answer(201, _run(state="failed", error="the provider could not be read: timed out"))
    code, out = billing("reconciliation", "run")
    assert code == 1 and "failed: the provider could not be read: timed out" in out and "clean" not in out


def test_a_refused_run_is_one_line(gateway):
    gateway.answer(422, {"error": "failed_precondition", "detail": "online payments are not configured"})
    assert billing("reconciliation", "run") == (1, "422: online payments are not configured")


def test_an_earlier_run_whose_discrepancies_a_later_run_found_again_is_not_called_clean(gateway):
    gateway.answer(200, {**_run(), "discrepancy_count": 1})
    code, out = billing("reconciliation", "show", "rec_1")
    assert code == 0 and "clean" not in out and "1 discrepancy(ies) found, found again by a later run" in out


def test_show_list_discrepancies_and_resolve(gateway):
    resolved = {**DISCREPANCY, "resolved": True, "resolution": "Refunded at the provider"}
    gateway.answer(200, _run(resolved))
    gateway.answer(200, {"data": [{k: v for k, v in _run().items() if k != "discrepancies"}], "next_page_token": ""})
    gateway.answer(200, {"data": [DISCREPANCY], "next_page_token": ""})
    gateway.answer(200, {"data": [resolved], "next_page_token": ""})
    gateway.answer(200, resolved)
    code, out = billing("reconciliation", "show", "rec_1")
    assert code == 0 and "Refunded at the provider" in out, out  # showing a run is not a cron signal
    code, out = billing("reconciliation", "list", "--limit", "5")
    assert code == 0 and "rec_1" in out and gateway.sent[1]["params"] == {"page_size": 5}
    code, out = billing("reconciliation", "discrepancies")
    assert code == 0 and "1 open discrepancy(ies)" in out and "include_resolved" not in gateway.sent[2]["params"]
    code, out = billing("reconciliation", "discrepancies", "--all", "--json")
    assert json.loads(out) == [resolved] and gateway.sent[3]["params"]["include_resolved"] == "true"
    code, out = billing("reconciliation", "resolve", "dsc_1", "--note", "Refunded at the provider")
    assert code == 0 and "Discrepancy dsc_1 resolved" in out
    assert (gateway.sent[4]["url"], gateway.sent[4]["json"]) == (
        "http://gateway.test/api/v1/admin/discrepancies/dsc_1/resolve", {"resolution": "Refunded at the provider"})
    assert billing("reconciliation", "resolve", "dsc_1")[0] == 2  # --note is required
