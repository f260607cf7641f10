"""The admin API client devstack's demo data uses: an operator's script, so it waits out a rate limit the way a
well-behaved client does. A 429 is retried after its ``Retry-After`` (at most ``max_wait`` seconds in all), since
``make run`` keeps the gateway's default of 30 staff writes a minute and two starts in a row can make more."""

from __future__ import annotations

import time

import httpx


class RetryAfter429(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport | None = None, *, max_wait: float = 120.0) -> None:
        self._inner = inner or httpx.HTTPTransport()
        self._max_wait = max_wait

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        waited = 0.0
        while True:
            response = self._inner.handle_request(request)
            if response.status_code != 429:
                return response
            try:
                delay = max(float(response.headers.get("Retry-After", "1")), 0.1)
            except ValueError:
                delay = 1.0
            if waited + delay > self._max_wait:
                return response
            response.close()
            time.sleep(delay)
            waited += delay

    def close(self) -> None:
        self._inner.close()


def admin_client(gateway_url: str, headers: dict[str, str], *, timeout: float,
                 transport: httpx.BaseTransport | None = None) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, headers=headers, timeout=timeout, transport=RetryAfter429(transport))
