"""TOTP codes (RFC 6238: SHA-1, 6 digits, 30-second steps, what authenticator apps expect) through ``pyotp``;
which codes are accepted (the window, no replays) is the domain's rule (``domain/sessions.py``)."""

from __future__ import annotations

import pyotp

from services.gateway.domain.sessions import TOTP_STEP_SECONDS

ISSUER = "Billing platform"


class PyOtpTotp:
    def new_secret(self) -> str:
        return pyotp.random_base32()  # 160 bits, RFC 4226's recommended length

    def uri(self, secret: str, email: str) -> str:
        return pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS).provisioning_uri(name=email, issuer_name=ISSUER)

    def code_at(self, secret: str, step: int) -> str:
        return pyotp.TOTP(secret, interval=TOTP_STEP_SECONDS).generate_otp(step)
