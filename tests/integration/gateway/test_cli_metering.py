"""billing metrics | usage | events, run with typer's CliRunner against the in-process gateway."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from typer.testing import CliRunner

from billing_cli.__main__ import app
from billing_cli.connection import CliError
from tests.integration.gateway.conftest import GATEWAY_ADMIN_TOKEN, eventually

runner = CliRunner()


async def billing(gateway_url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run the CLI in a thread (it makes blocking HTTP calls to the gateway served by this event loop)."""
    argv = ["--gateway", gateway_url, "--admin-token", GATEWAY_ADMIN_TOKEN, *args]
    environment = {"COLUMNS": "250", "BILLING_ENDPOINTS": "/nonexistent/endpoints.json", **(env or {})}
    result = await asyncio.to_thread(runner.invoke, app, argv, env=environment)
    if isinstance(result.exception, CliError):  # main() prints these as one line and exits 1
        return 1, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


async def test_metrics_create_list_observed_and_archive(gateway_url, key_holder):
    organisation = key_holder.organisation_id
    code, out = await billing(gateway_url, "metrics", "create", "--organisation", organisation, "--code",
                              "llm_tokens", "--aggregation", "sum", "--unit", "tokens", "--filter",
                              "model=gpt-4o,claude", "--json")
    assert code == 0, out
    metric = json.loads(out)[0]
    assert (metric["code"], metric["name"], metric["unit"]) == ("llm_tokens", "llm_tokens", "tokens")
    assert {key: set(values) for key, values in metric["filters"].items()} == {"model": {"gpt-4o", "claude"}}
    code, out = await billing(gateway_url, "metrics", "list", "--organisation-id", organisation)
    assert code == 0 and metric["id"] in out and "llm_tokens" in out

    assert (await key_holder.send({"metricName": "undefined_code", "metricValue": 1})).status_code == 202

    async def observed() -> str | None:
        status, text = await billing(gateway_url, "metrics", "observed", "--organisation", organisation)
        return text if status == 0 and "undefined_code" in text else None

    text = await eventually(observed, what="the observed code in `billing metrics observed`")
    assert "metrics create --code" in text  # says how to count the undefined code

    code, out = await billing(gateway_url, "metrics", "archive", metric["id"], "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "archived"
    code, out = await billing(gateway_url, "metrics", "list", "--organisation", organisation, "--json")
    assert json.loads(out) == []


async def test_events_send_and_usage_as_a_table(gateway_url, admin_http, key_holder):
    organisation = key_holder.organisation_id
    created = await admin_http.post("/api/v1/admin/metrics", json={
        "organisation_id": organisation, "code": "tokens", "name": "Tokens", "aggregation": "sum"})
    assert created.status_code == 201
    for event_id, value, model in (("cli-1", "0.1", "small"), ("cli-2", "0.2", "large"), ("cli-1", "0.1", "small")):
        code, out = await billing(gateway_url, "events", "send", "--api-key", key_holder.api_key, "--metric",
                                  "tokens", "--value", value, "--dimension", f"model={model}", "--event-id", event_id)
        assert code == 0, out
        assert "cli-" in out
    # The key from the environment, as the help says.
    code, out = await billing(gateway_url, "events", "send", "--metric", "tokens", "--value", "0.3", "--event-id",
                              "cli-3", "--dimension", "model=small", "--json",
                              env={"BILLING_API_KEY": key_holder.api_key})
    assert code == 0 and json.loads(out)["accepted"] == 1

    async def usage_json() -> dict:
        status, text = await billing(gateway_url, "usage", "tokens", "--organisation", organisation, "--group-by",
                                     "model", "--json")
        assert status == 0, text
        return json.loads(text)

    body = await eventually(usage_json, lambda body: sum(row["event_count"] for row in body["rows"]) == 3,
                            what="three events in `billing usage`")
    assert {row["group_value"]: Decimal(row["value"]) for row in body["rows"]} == {
        "small": Decimal("0.4"), "large": Decimal("0.2")}

    code, table = await billing(gateway_url, "usage", "tokens", "--organisation", organisation, "--window", "day",
                                "--time-zone", "Asia/Kolkata", "--group-by", "model")
    assert code == 0, table
    assert "tokens (sum) for " + organisation in table and "Asia/Kolkata" in table
    assert "0.4" in table and "0.2" in table and "group_value" in table


async def test_a_gauge_metric_and_its_usage_in_value_hours(gateway_url, key_holder):
    organisation = key_holder.organisation_id
    code, out = await billing(gateway_url, "metrics", "create", "--organisation", organisation, "--code",
                              "storage_gb", "--aggregation", "weighted_sum", "--unit", "GB", "--json")
    assert code == 0, out
    assert json.loads(out)[0]["aggregation"] == "weighted_sum"
    set_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    code, out = await billing(gateway_url, "events", "send", "--api-key", key_holder.api_key, "--metric",
                              "storage_gb", "--value", "10", "--event-id", "disk-1", "--timestamp",
                              set_at.isoformat().replace("+00:00", "Z"))
    assert code == 0, out
    since = (set_at - timedelta(hours=1)).isoformat().replace("+00:00", "Z")

    async def usage_table() -> str | None:
        status, text = await billing(gateway_url, "usage", "storage_gb", "--organisation", organisation, "--from",
                                     since)
        return text if status == 0 and "No usage" not in text else None

    table = await eventually(usage_table, what="the gauge's usage in `billing usage`")
    assert "storage_gb (weighted_sum GB-hours) for " + organisation in table
    # 10 GB held from two hours ago until the question: 20 GB-hours and a few thousandths.
    (value,) = re.findall(r"\b20\.\d+\b", table)
    assert Decimal(20) < Decimal(value) < Decimal("20.1")


async def test_errors_are_one_line_and_exit_1(gateway_url, key_holder):
    code, out = await billing(gateway_url, "events", "send", "--api-key", "bk_wrong", "--metric", "m", "--value", "1")
    assert code == 1 and out.startswith("401")
    code, out = await billing(gateway_url, "events", "send", "--api-key", key_holder.api_key, "--metric", "m",
                              "--value", "NaN")
    assert code == 1 and "rejected" in out and "metricValue" in out  # the event was refused, not the request
    code, out = await billing(gateway_url, "usage", "m", "--organisation", key_holder.organisation_id,
                              "--time-zone", "Nowhere/Land")
    assert code == 1 and "--time-zone" in out
    code, out = await billing(gateway_url, "metrics", "create", "--organisation", key_holder.organisation_id,
                              "--code", "Bad Code", "--aggregation", "sum")
    assert code == 1 and "400" in out and "code" in out
