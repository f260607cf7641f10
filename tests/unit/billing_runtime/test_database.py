"""The PostgreSQL URL handed to SQLAlchemy selects the asyncpg driver."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from billing_runtime.database import async_url

_REST = "user:secret@db.example.com:6543/billing"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://user:secret@db.example.com:6543/billing", f"postgresql+asyncpg://{_REST}"),
        ("postgres://user:secret@db.example.com:6543/billing", f"postgresql+asyncpg://{_REST}"),
        ("postgresql://localhost/billing", "postgresql+asyncpg://localhost/billing"),
        ("postgresql+psycopg2://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_converts(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_keeps_every_component(scheme: str) -> None:
    url = f"{scheme}://billing_user:p%40ss%2Fw0rd@db.internal:6543/billing_prod?sslmode=require&application_name=ingest"
    converted = make_url(async_url(url))
    assert converted.drivername == "postgresql+asyncpg"
    assert converted.username == "billing_user"
    assert converted.password == "p@ss/w0rd"
    assert converted.host == "db.internal"
    assert converted.port == 6543
    assert converted.database == "billing_prod"
    assert dict(converted.query) == {"sslmode": "require", "application_name": "ingest"}


def test_password_is_not_masked() -> None:
    assert "***" not in async_url("postgresql://u:secret@h/d")
    assert ":secret@" in async_url("postgresql://u:secret@h/d")


def test_only_the_scheme_is_rewritten() -> None:
    converted = make_url(async_url("postgres://u@h/postgres"))
    assert converted.database == "postgres"


@pytest.mark.parametrize(
    ("url", "backend"),
    [("mysql://u:p@h/d", "mysql"), ("sqlite:///billing.db", "sqlite"), ("mssql+pyodbc://u@h/d", "mssql")],
)
def test_rejects_other_databases(url: str, backend: str) -> None:
    with pytest.raises(ValueError, match=f"database_url must be a PostgreSQL URL, got '{backend}'"):
        async_url(url)


def test_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="database_url is not a URL"):
        async_url("not a url")
