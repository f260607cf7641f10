"""The gateway's one input policy, in front of fake stubs: what a fuzzer found answering 500 or the wrong shape is a
400 in our shape naming the field, and nothing reaches a service."""

from __future__ import annotations

import json

import pytest

from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http.input_policy import check_json, clip
from tests.unit.services.gateway.entrypoints.http.fake_services import ADMIN, Gateway


@pytest.fixture
def gateway() -> Gateway:
    gateway = Gateway()
    gateway.add_key("key_1", "org_1")
    return gateway


def _refused(response, field: str | None) -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_argument"
    assert body.get("field") == field, body
    assert set(body) <= {"error", "detail", "field"}
    return body


def _no_calls(gateway: Gateway) -> None:
    for stub in (gateway.invoicing, gateway.payments, gateway.notification, gateway.clients.metering):
        assert not stub.requests, dict(stub.requests)


def test_nul_in_a_path_id(gateway):
    body = _refused(gateway.http.get("/api/v1/invoices/%00", headers={"Authorization": "Bearer key_1"}),
                    "invoice_id")
    assert "NUL" in body["detail"]
    _refused(gateway.http.get("/api/v1/admin/invoices/inv%001", headers=ADMIN), "invoice_id")
    _no_calls(gateway)


def test_nul_in_a_query_value(gateway):
    _refused(gateway.http.get("/api/v1/admin/plans?code=%00", headers=ADMIN), "code")
    _refused(gateway.http.get("/api/v1/admin/plans?x%00y=1", headers=ADMIN), None)
    _no_calls(gateway)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/admin/api-keys", {"project_id": "prj\u0000"}, "project_id"),
    ("/api/v1/admin/metrics", {"code": "api_calls", "name": "API calls", "aggregation": "count",
                               "filters": {"region": "eu\u0000"}}, "filters.region"),
    ("/api/v1/admin/metrics", {"code": "api_calls", "name": "API calls", "aggregation": "count",
                               "filters": {"reg\u0000ion": "eu"}}, "filters"),
    ("/api/v1/admin/organisations", {"name": "\ud800", "billing_email": "a@b.c", "billing_currency": "INR",
                                     "country": "IN"}, "name"),
])
def test_unstorable_text_in_a_body(gateway, path, body, field):
    content = json.dumps(body).encode()  # ASCII escapes: a lone surrogate travels as the text \ud800
    _refused(gateway.http.post(path, content=content, headers={**ADMIN, "Content-Type": "application/json"}), field)
    _no_calls(gateway)


def test_integers_are_int64(gateway):
    _refused(gateway.http.get("/api/v1/admin/audit-log?before_id=9223372036854775808", headers=ADMIN), "before_id")
    body = {"organisation_id": "org_1", "kind": "usage", "metric": "m", "window_seconds": 2**63}
    _refused(gateway.http.post("/api/v1/admin/alert-rules", json=body, headers=ADMIN), "window_seconds")
    _no_calls(gateway)


def test_a_body_not_utf8_or_not_json_is_our_shape(gateway):
    response = gateway.http.post("/api/v1/admin/projects", content=b'{"name": "\xff\xfe"}', headers={
        **ADMIN, "Content-Type": "application/json"})
    assert "UTF-8" in _refused(response, None)["detail"]
    _refused(gateway.http.post("/api/v1/admin/projects", content=b"{", headers={
        **ADMIN, "Content-Type": "application/json"}), None)
    _no_calls(gateway)


def test_booleans_are_strict(gateway):
    response = gateway.http.post("/api/v1/admin/subscriptions/sub_1/cancel", json={"at_period_end": 0},
                                 headers=ADMIN)
    _refused(response, "at_period_end")
    _no_calls(gateway)


def test_an_empty_quantity_is_no_number(gateway):
    body = {"currency": "INR", "charge": {"model": "per_unit", "unit_price": "1"},
            "quantity": ""}
    _refused(gateway.http.post("/api/v1/pricing/quote", json=body, headers={"Authorization": "Bearer key_1"}),
             "quantity")
    _no_calls(gateway)


def test_an_exchange_rates_source_is_required_as_documented(gateway):
    body = {"base_currency": "USD", "quote_currency": "INR", "rate": "84.5"}
    _refused(gateway.http.post("/api/v1/admin/exchange-rates", json=body, headers=ADMIN), "source")
    schema = gateway.app.openapi()["components"]["schemas"]["ExchangeRateCreate"]
    assert "source" in schema["required"]
    _no_calls(gateway)


def test_405_lists_every_method_of_the_path(gateway):
    response = gateway.http.delete("/api/v1/admin/plans", headers=ADMIN)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    assert response.json()["error"] == "method_not_allowed"


def test_unknown_path_is_our_shape(gateway):
    response = gateway.http.get("/api/v1/nothing-here" + "x" * 10_000)
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "not_found" and len(body["detail"]) < 200


def test_check_json_names_nested_fields():
    with pytest.raises(InvalidArgument) as error:
        check_json({"terms": {"charges": [{"charge": "ok"}, {"charge": "a\x00"}]}})
    assert error.value.field == "terms.charges[1].charge"
    check_json({"a": [1, -(2**63), 2**63 - 1, True, None, "ü😀"]})
    assert clip("x" * 100) == "x" * 64 + "…"


def test_a_huge_idempotency_key_is_refused_without_echoing_it():
    from datetime import UTC, datetime

    from services.gateway.entrypoints.http.events_json import parse_events

    key = "k" * (10 * 1024 * 1024)
    parsed = parse_events(json.dumps({"metricName": "api_calls", "idempotencyKey": key}).encode(), datetime.now(UTC))
    assert len(parsed.request.events) == 0  # nothing goes to ingest
    event_id, field, reason = parsed.rejected[0]
    assert field == "idempotencyKey" and "at most 128" in reason
    assert len(event_id) <= 65 and len(reason) < 100
