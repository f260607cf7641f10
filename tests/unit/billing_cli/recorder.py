"""The gateway's HTTP replaced by a recorder, and the ``billing`` CLI run against it, for the CLI's unit tests."""

from __future__ import annotations

from typing import Any

import httpx
from typer.testing import CliRunner

from billing_cli.__main__ import app
from billing_cli.connection import CliError

GATEWAY = ["--gateway", "http://gateway.test", "--admin-token", "t" * 32]
ENV = {"COLUMNS": "250", "BILLING_ENDPOINTS": "/nonexistent/endpoints.json"}


class Recorder:
    """Stands for the gateway: records each request and answers the queued (status, body, headers)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any, dict[str, str]]] = []

    def answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.answers.append((status, body, headers or {}))

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.sent.append({"method": method, "url": url, **kwargs})
        if not self.answers:
            raise httpx.ConnectError("connection refused")
        status, body, headers = self.answers.pop(0)
        return httpx.Response(status, json=body, headers=headers, request=httpx.Request(method, url))


def billing(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*GATEWAY, *args], env=ENV)
    if isinstance(result.exception, CliError):
        return 1, str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
