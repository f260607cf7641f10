"""devstack's demo client waits out the gateway's write limit (429 + Retry-After) instead of giving up."""

from __future__ import annotations

import httpx

from devstack.admin_http import RetryAfter429


def test_a_429_is_retried_after_its_retry_after_until_the_budget_runs_out():
    answers = iter([httpx.Response(429, headers={"Retry-After": "0.05"}), httpx.Response(201, json={"id": "x"})])
    client = httpx.Client(transport=RetryAfter429(httpx.MockTransport(lambda request: next(answers))))
    assert client.post("http://gateway.test/api/v1/admin/users").status_code == 201

    always = RetryAfter429(httpx.MockTransport(lambda request: httpx.Response(429, headers={"Retry-After": "1"})),
                           max_wait=0.5)
    assert httpx.Client(transport=always).post("http://gateway.test/x").status_code == 429
