"""billing alerts / quota / entitlements without a server: what each command sends to the gateway and how it reads
the answer (a denied quota check exits 3). The commands against the real platform are in
tests/e2e/test_alerts_quotas.py."""

from __future__ import annotations

import json

from tests.unit.billing_cli.recorder import billing

ADMIN = "http://gateway.test/api/v1/admin"
RULE = {"id": "alr_1", "organisation_id": "org_1", "project_id": "", "kind": "threshold", "name": "quota",
        "metric_code": "api_calls", "basis": "quota_percent", "levels": ["80", "100"], "window_seconds": 0,
        "baseline_seconds": 0, "factor": "", "min_volume": "", "budget": "", "currency": "INR",
        "created_at": "2026-12-05T10:00:00Z", "deleted_at": None}
STATUS = {"organisation_id": "org_1", "metric": "api_calls", "allowed": False, "reason": "over_hard_cap",
          "message": "hard cap of 100 api_calls reached", "quantity": "1", "used": "100", "limit": "100",
          "remaining": "0", "cap": "hard", "grace_limit": None, "grace_ends_at": None,
          "period_start": "2026-12-01T00:00:00Z", "resets_at": "2027-01-01T00:00:00Z", "enforced_at_ingest": True,
          "plan_code": "standard", "plan_version": 1, "usage_as_of": "2026-12-05T10:00:00Z"}


def test_create_a_quota_percent_threshold_rule(gateway):
    gateway.answer(201, RULE)
    code, out = billing("alerts", "create", "--organisation", "org_1", "--kind", "threshold", "--metric",
                        "api_calls", "--level", "80", "--level", "100", "--of-quota", "--name", "quota")
    assert code == 0 and "alr_1" in out and "80, 100" in out, out
    sent = gateway.sent[0]
    assert (sent["method"], sent["url"]) == ("POST", f"{ADMIN}/alert-rules")
    assert sent["json"] == {"organisation_id": "org_1", "kind": "threshold", "name": "quota", "project_id": "",
                            "metric_code": "api_calls", "levels": ["80", "100"], "basis": "quota_percent"}


def test_create_a_spike_rule_sends_only_its_fields(gateway):
    gateway.answer(201, {**RULE, "kind": "spike", "basis": None})
    code, _ = billing("alerts", "create", "--organisation", "org_1", "--kind", "spike", "--metric", "api_calls",
                      "--window", "3600", "--baseline", "604800", "--factor", "3", "--min-volume", "100")
    assert code == 0
    assert gateway.sent[0]["json"] == {"organisation_id": "org_1", "kind": "spike", "name": "", "project_id": "",
                                       "metric_code": "api_calls", "levels": [], "window_seconds": 3600,
                                       "baseline_seconds": 604800, "factor": "3", "min_volume": "100"}


def test_of_quota_is_for_thresholds_only(gateway):
    code, out = billing("alerts", "create", "--organisation", "org_1", "--kind", "cost", "--budget", "100",
                        "--of-quota")
    assert code == 1 and "threshold" in out and gateway.sent == []


def test_a_cost_rule_on_the_forecast(gateway):
    gateway.answer(201, {**RULE, "kind": "cost", "basis": None, "levels": ["100"], "budget": "50000",
                         "cost_basis": "forecast"})
    code, out = billing("alerts", "create", "--organisation", "org_1", "--kind", "cost", "--budget", "50000",
                        "--forecast")
    assert code == 0 and "forecast" in out, out
    assert gateway.sent[0]["json"] == {"organisation_id": "org_1", "kind": "cost", "name": "", "project_id": "",
                                       "metric_code": "", "levels": [], "budget": "50000", "cost_basis": "forecast"}
    code, out = billing("alerts", "create", "--organisation", "org_1", "--kind", "threshold", "--metric", "m",
                        "--level", "1", "--forecast")
    assert code == 1 and "cost rules only" in out and len(gateway.sent) == 1


def test_history_follows_pages(gateway):
    fired = {"id": "alf_1", "rule_id": "alr_1", "rule_name": "quota", "organisation_id": "org_1", "project_id": "",
             "kind": "threshold", "metric_code": "api_calls", "level": "80", "threshold": "80", "value": "80",
             "baseline": "", "currency": "", "event_id": "e80", "event_project_id": "prj_1",
             "event_time": "2026-12-05T10:00:00Z", "period_start": "2026-12-01T00:00:00Z",
             "period_end": "2027-01-01T00:00:00Z", "fired_at": "2026-12-05T10:00:01Z"}
    gateway.answer(200, {"data": [fired], "next_page_token": "p2"})
    gateway.answer(200, {"data": [{**fired, "id": "alf_2", "event_id": "e100"}], "next_page_token": ""})
    code, out = billing("alerts", "history", "--organisation", "org_1", "--json")
    assert code == 0 and [a["event_id"] for a in json.loads(out)] == ["e80", "e100"]
    assert gateway.sent[0]["params"]["organisation_id"] == "org_1"


def test_a_denied_quota_check_exits_3_with_the_reason(gateway):
    gateway.answer(200, STATUS)
    code, out = billing("quota", "check", "--organisation", "org_1", "--metric", "api_calls")
    assert code == 3 and "Denied" in out and "over_hard_cap" in out
    assert gateway.sent[0]["url"] == f"{ADMIN}/quota"
    assert gateway.sent[0]["params"] == {"organisation_id": "org_1", "metric": "api_calls", "quantity": "1"}


def test_entitlements_show_names_the_plan(gateway):
    gateway.answer(200, {"organisation_id": "org_1", "subscription_found": True, "plan_code": "pro",
                         "plan_version": 2, "entitlements": [
                             {"feature": "sso", "value": True, "type": "bool", "source": "override"}]})
    code, out = billing("entitlements", "show", "--organisation", "org_1")
    assert code == 0 and "pro (v2)" in out and "override" in out


def test_entitlement_overrides_send_typed_values(gateway):
    for _ in range(4):
        gateway.answer(200, {"organisation_id": "org_1", "overrides": {"seats": {"number": "25"}, "sso": True}})
    for value in ("true", "25", "priority"):
        code, out = billing("entitlements", "set", "--organisation", "org_1", "feature", value)
        assert code == 0 and "2 override(s)" in out, out
    assert [sent["json"] for sent in gateway.sent] == [{"value": True}, {"value": {"number": "25"}},
                                                       {"value": "priority"}]
    assert gateway.sent[0]["url"] == f"{ADMIN}/organisations/org_1/entitlement-overrides/feature"
    code, _ = billing("entitlements", "unset", "--organisation", "org_1", "sso")
    assert code == 0 and gateway.sent[-1]["method"] == "DELETE"
