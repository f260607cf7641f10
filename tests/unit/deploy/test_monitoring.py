"""deploy/monitoring: the Grafana dashboard and the PrometheusRule parse, have the shape their tools expect, cover
what operators asked for, and refer only to metrics some code exports (so a renamed metric cannot leave a panel or
an alert silently empty)."""

from __future__ import annotations

import functools
import importlib
import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
MONITORING = ROOT / "deploy" / "monitoring"
# Metrics the rules use that other software exports: kube-state-metrics' Job status (a failed migrations Job).
EXTERNAL_METRICS = {"kube_job_status_failed"}
_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf",
    "nan",
}


@functools.cache
def exported_metrics() -> frozenset[str]:
    """Every sample name the platform's code can export: import each module that declares a metric, then read the
    default registry (a labelled metric has no sample until used, so names come from each family's type)."""
    for path in [*(ROOT / "billing_runtime").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        if "prometheus_client" in path.read_text():
            importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    names: set[str] = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",),
                    "summary": ("_count", "_sum", "")}.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return frozenset(names)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers left once strings, label matchers, ranges,
    grouping clauses and function calls are taken out."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if not call and name not in _PROMQL_WORDS:
            names.add(name)
    return names


def _balanced(expr: str) -> bool:
    depth = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            depth.append(char)
        elif char in pairs and (not depth or depth.pop() != pairs[char]):
            return False
    return not depth


def dashboard() -> dict:
    return json.loads((MONITORING / "grafana-dashboard.json").read_text())


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])]


def rules() -> list[dict]:
    document = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1" and document["kind"] == "PrometheusRule"
    assert document["metadata"]["name"]
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def test_the_expression_reader_finds_metrics_and_nothing_else():
    expr = ('sum by (durable, outcome) (rate(billing_consumer_messages_total{outcome=~"retry|gave_up"}[5m])) / '
            'on (durable) group_left histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[$__rate_interval])))'
            ' * 60 > bool 100 or vector(0)')
    assert metric_names(expr) == {"billing_consumer_messages_total", "x_seconds_bucket"}


def test_every_metric_the_dashboard_and_the_rules_use_is_exported_by_some_code():
    used = {name for expr in [*dashboard_exprs(), *(rule["expr"] for rule in rules())] for name in metric_names(expr)}
    assert used, "no metric found: the expression reader is broken"
    missing = used - exported_metrics() - EXTERNAL_METRICS
    assert not missing, f"metrics no code exports (renamed? see docs/operations-metrics.md): {sorted(missing)}"


def test_every_exported_metric_is_documented():
    documented = (ROOT / "docs" / "operations-metrics.md").read_text()
    bases = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exported_metrics()
             if name.startswith(("billing_", "ingest_", "grpc_server_", "http_server_"))}
    missing = {name for name in bases if f"`{name}`" not in documented and f"`{name}_total`" not in documented}
    assert not missing, f"add these to docs/operations-metrics.md: {sorted(missing)}"


def test_the_dashboard_is_a_grafana_dashboard_with_well_formed_panels():
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30
    assert any(v["type"] == "datasource" and v["name"] == "datasource" for v in board["templating"]["list"])
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys() and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}", panel["title"]
    for expr in dashboard_exprs():
        assert _balanced(expr), expr


def test_the_dashboard_shows_what_operators_asked_for():
    used = {name for expr in dashboard_exprs() for name in metric_names(expr)}
    asked = {
        "ingest rate": "ingest_events_total",
        "rejects by reason": "billing_ingest_events_rejected_total",
        "consumer lag": "billing_metering_consumer_backlog_messages",
        "redeliveries": "billing_consumer_redeliveries_total",
        "dead letters": "billing_metering_batches_dead_lettered_total",
        "invoice run progress": "billing_invoicing_run_organisations_total",
        "payment outcomes": "billing_outbox_events_recorded_total",
        "webhook latency": "billing_notification_webhook_delivery_seconds_bucket",
        "email deliveries": "billing_notification_emails_total",
        "webhook deliveries": "billing_notification_webhook_deliveries_total",
        "API errors": "http_server_requests_total",
    }
    assert {what for what, metric in asked.items() if metric not in used} == set()


def test_the_alert_rules_hold_the_thresholds_operators_asked_for():
    by_name = {rule["alert"]: rule for rule in rules()}
    for rule in by_name.values():
        assert rule["labels"]["severity"] in {"critical", "warning"} and rule["annotations"]["summary"]
        assert _balanced(rule["expr"]), rule["expr"]
    assert "billing_consumer_messages_total" in by_name["BillingConsumerTerminatedMessages"]["expr"]
    assert "billing_migration_failures_total" in by_name["BillingMigrationFailed"]["expr"]
    assert by_name["BillingReconciliationDiscrepancies"]["expr"].endswith("> 0")
    assert re.search(r">\s*0\.10\s*$", by_name["BillingQueueFailureRate"]["expr"])
    assert re.search(r'status=~"5\.\."\}\[5m\]\)\) \* 60 > 100$', by_name["BillingApiErrors"]["expr"])


def test_monitoring_stays_out_of_the_kustomizations():
    """PrometheusRule is a CRD the strict manifest validation does not know; it is applied on its own."""
    for kustomization in (ROOT / "deploy" / "k8s").rglob("kustomization.yaml"):
        assert "monitoring" not in kustomization.read_text(), kustomization
