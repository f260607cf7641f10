"""Bodies and answers of /api/v1/auth: signing in and out, the session, the password and the TOTP factor."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, SecretStr

from services.gateway.entrypoints.http.schemas import Request
from services.gateway.entrypoints.http.staff_schemas import User

# Bounded before anything is hashed (the policy itself says 12 to 256 characters).
_PASSWORD = Field(max_length=1024)


class Login(Request):
    email: str = Field(max_length=320, examples=["asha@billing.example"])
    password: SecretStr = _PASSWORD
    totp_code: str | None = Field(None, max_length=16, description="Required once the user enabled TOTP",
                                  examples=["123456"])


class SessionInfo(BaseModel):
    csrf_token: str = Field(description="Send as X-CSRF-Token with every POST, PUT, PATCH and DELETE")
    expires_at: datetime = Field(description="The absolute end of the session")
    idle_expires_at: datetime = Field(description="When the session ends unless used before")
    user: User


class PasswordChange(Request):
    current_password: SecretStr = _PASSWORD
    new_password: SecretStr = Field(max_length=1024, description="12 to 256 characters, not the email")


class TotpEnrolment(BaseModel):
    secret: str = Field(description="Base32, for typing into an authenticator app")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI (for a QR code)")


class TotpCode(Request):
    code: str = Field(max_length=16, description="The authenticator's current 6-digit code", examples=["123456"])
