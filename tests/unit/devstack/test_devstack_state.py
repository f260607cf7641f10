"""`make run`'s gateway secrets key: made once, kept private in the data directory, the same at every later start
(the TOTP secrets it sealed must still open), and one the gateway accepts."""

from __future__ import annotations

import stat

from devstack.state import gateway_secrets_key
from services.gateway.config import GatewaySettings


def test_the_key_is_made_once_kept_private_and_accepted_by_the_gateway(tmp_path):
    said: list[str] = []
    key = gateway_secrets_key(tmp_path, said.append)
    path = tmp_path / "gateway-secrets-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text().strip() == key
    assert len(said) == 1 and key not in said[0]
    assert gateway_secrets_key(tmp_path, said.append) == key and len(said) == 1
    settings = GatewaySettings(admin_token="x" * 16, database_url="postgresql://unused/unused", secrets_key=key)
    assert len(settings.secrets_keys()[0]) == 32

