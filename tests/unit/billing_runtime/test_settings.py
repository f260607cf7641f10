"""Service settings: per-service prefixed variables with shared unprefixed fallbacks."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.ingest.config import IngestSettings

_VARIABLES = [
    "DATABASE_URL",
    "NATS_URL",
    "GRPC_PORT",
    "LOG_LEVEL",
    "TESTSVC_DATABASE_URL",
    "TESTSVC_NATS_URL",
    "TESTSVC_GRPC_PORT",
    "TESTSVC_LOG_LEVEL",
    "INGEST_DATABASE_URL",
    "INGEST_NATS_URL",
    "INGEST_GRPC_PORT",
]


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TESTSVC_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_prefixed_database_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTSVC_DATABASE_URL", "postgresql://svc@db/own")
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    assert ExampleSettings().database_url == "postgresql://svc@db/own"


def test_unprefixed_database_url_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    assert ExampleSettings().database_url == "postgresql://shared@db/shared"


def test_neither_set_names_the_variables() -> None:
    with pytest.raises(ValidationError) as raised:
        ExampleSettings()
    message = str(raised.value)
    assert "database_url is required: set TESTSVC_DATABASE_URL or DATABASE_URL" in message


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTSVC_DATABASE_URL", "")
    monkeypatch.setenv("DATABASE_URL", "")
    with pytest.raises(ValidationError, match="TESTSVC_DATABASE_URL or DATABASE_URL"):
        ExampleSettings()


def test_constructor_argument_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESTSVC_DATABASE_URL", "postgresql://svc@db/own")
    assert ExampleSettings(database_url="postgresql://arg@db/x").database_url == "postgresql://arg@db/x"


def test_nats_url_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    monkeypatch.setenv("NATS_URL", "nats://shared:4222")
    assert ExampleSettings().nats_url == "nats://shared:4222"
    monkeypatch.setenv("TESTSVC_NATS_URL", "nats://own:4222")
    assert ExampleSettings().nats_url == "nats://own:4222"


def test_nats_url_may_be_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    assert ExampleSettings().nats_url == ""


def test_other_fields_read_only_the_prefixed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    monkeypatch.setenv("GRPC_PORT", "1111")
    monkeypatch.setenv("TESTSVC_LOG_LEVEL", "DEBUG")
    settings = ExampleSettings()
    assert settings.grpc_port == 0
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(("name", "value"), [("TESTSVC_GRPC_PORT", "70000"), ("TESTSVC_LOG_LEVEL", "TRACE")])
def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        ExampleSettings()


def test_ingest_prefix_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGEST_DATABASE_URL", "postgresql://ingest@db/ingest")
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    settings = IngestSettings()
    assert settings.database_url == "postgresql://ingest@db/ingest"
    assert settings.grpc_port == 50051


def test_ingest_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://shared@db/shared")
    assert IngestSettings().database_url == "postgresql://shared@db/shared"


def test_ingest_error_names_its_variable() -> None:
    with pytest.raises(ValidationError, match="set INGEST_DATABASE_URL or DATABASE_URL"):
        IngestSettings()


def test_a_secret_may_come_from_a_file(tmp_path, monkeypatch):
    from services.gateway.config import GatewaySettings

    token, webhook, key = tmp_path / "token", tmp_path / "webhook", tmp_path / "key"
    token.write_text("a-token-from-a-file-0123456789\n")
    webhook.write_text("whsec-from-file")
    key.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN_FILE", str(token))
    monkeypatch.setenv("GATEWAY_RAZORPAY_WEBHOOK_SECRET_FILE", str(webhook))
    monkeypatch.setenv("GATEWAY_SECRETS_KEY_FILE", str(key))
    for name in ("GATEWAY_ADMIN_TOKEN", "GATEWAY_SECRETS_KEY", "GATEWAY_SECRETS_PREVIOUS_KEYS"):
        monkeypatch.delenv(name, raising=False)
    settings = GatewaySettings(database_url="postgresql://x@127.0.0.1/db")
    assert settings.admin_token.get_secret_value() == "a-token-from-a-file-0123456789"
    assert settings.razorpay_webhook_secrets() == ["whsec-from-file"]
    assert settings.secrets_keys() == (bytes(range(32)), [])
    assert "whsec-from-file" not in repr(settings) and key.read_text().strip() not in repr(settings)


def test_an_unreadable_secret_file_is_a_configuration_error(tmp_path, monkeypatch):
    from services.payments.config import PaymentsSettings

    monkeypatch.setenv("PAYMENTS_RAZORPAY_KEY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="PAYMENTS_RAZORPAY_KEY_SECRET_FILE: cannot read"):
        PaymentsSettings(database_url="postgresql://x@127.0.0.1/db")


def test_stripe_keys_and_the_default_provider(tmp_path, monkeypatch):
    from services.payments.config import PaymentsSettings
    from services.payments.domain.payment import Provider

    base = {"database_url": "postgresql://x@127.0.0.1/db"}
    assert PaymentsSettings(**base).default_provider is Provider.RAZORPAY and not PaymentsSettings(**base).stripe_online
    with pytest.raises(ValidationError, match="stripe needs PAYMENTS_STRIPE_SECRET_KEY"):
        PaymentsSettings(**base, default_provider="stripe")
    with pytest.raises(ValidationError, match="must be razorpay or stripe"):
        PaymentsSettings(**base, default_provider="offline")
    with pytest.raises(ValidationError):
        PaymentsSettings(**base, default_provider="paypal")
    (tmp_path / "stripe").write_text("sk_test_from_a_file\n")
    monkeypatch.setenv("PAYMENTS_STRIPE_SECRET_KEY_FILE", str(tmp_path / "stripe"))
    settings = PaymentsSettings(**base, default_provider="stripe")
    assert settings.stripe_online and settings.stripe_secret_key.get_secret_value() == "sk_test_from_a_file"
    assert "sk_test_from_a_file" not in repr(settings)


def test_the_gateways_stripe_webhook_secrets(monkeypatch):
    from services.gateway.config import GatewaySettings

    key = base64.b64encode(bytes(32)).decode()
    settings = GatewaySettings(admin_token="x" * 20, database_url="postgresql://x@127.0.0.1/db", secrets_key=key,
                               stripe_webhook_secret="whsec_new", stripe_webhook_previous_secret="whsec_old")
    assert settings.stripe_webhook_secrets() == ["whsec_new", "whsec_old"]
    assert settings.stripe_webhook_tolerance_seconds == 300
    with pytest.raises(ValidationError):
        GatewaySettings(admin_token="x" * 20, database_url="postgresql://x@127.0.0.1/db", secrets_key=key,
                        stripe_webhook_tolerance_seconds=5)


def test_a_refused_setting_is_named_but_its_value_never_echoed():
    """Every service's settings: a value refused at start-up may be a secret (a provider key pasted into the wrong
    variable), so the error names the setting and never repeats the value."""
    from services.payments.config import PaymentsSettings

    with pytest.raises(ValidationError) as refused:
        PaymentsSettings(database_url="postgresql://x@127.0.0.1/db", shutdown_grace_seconds="rzp_live_S3cr3tKeyValue")
    assert "shutdown_grace_seconds" in str(refused.value)
    assert "S3cr3tKeyValue" not in str(refused.value)
