from __future__ import annotations

import pytest

from billing_cli import connection
from tests.unit.billing_cli.recorder import Recorder


@pytest.fixture
def gateway(monkeypatch) -> Recorder:
    """The gateway's HTTP, recorded: queue answers with ``gateway.answer(status, body)``."""
    recorder = Recorder()
    monkeypatch.setattr(connection.httpx, "request", recorder)
    return recorder
