"""The IRP connector for NIC's direct e-invoice API (a GSP adapter would implement the same port).

Authentication (``/eivital/v1.04/auth``): a fresh 32-byte AppKey, sent with the username and password RSA-encrypted
(PKCS#1 v1.5) to NIC's public key; the answer holds an AuthToken, its expiry, and the session key ``Sek``
AES-256-ECB encrypted with the AppKey. Every later payload and answer is AES-256-ECB encrypted with the Sek.
The token is renewed when it is within ``refresh_margin`` of its expiry, and once more if the IRP says 1005
(invalid token) anyway.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from services.invoicing.domain.einvoice_registration import Acknowledgement, IrpRefusal, IrpUnavailable

IST = timezone(timedelta(hours=5, minutes=30), "IST")
NIC_TIME = "%Y-%m-%d %H:%M:%S"
AUTH_PATH = "/eivital/v1.04/auth"
INVOICE_PATH = "/eicore/v1.03/Invoice"
INVALID_TOKEN = "1005"


def _aes(key: bytes, plain: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - NIC's scheme is AES-ECB
    return encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()


def _aes_open(key: bytes, cipher_text: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(cipher_text) + decryptor.finalize()) + unpadder.finalize()


def parse_nic_time(text: str) -> datetime:
    return datetime.strptime(text, NIC_TIME).replace(tzinfo=IST).astimezone(UTC)


@dataclass(frozen=True)
class NicCredentials:
    gstin: str
    client_id: str
    client_secret: str
    username: str
    password: str
    public_key_pem: str  # NIC's key for the auth payload (not the one that verifies signatures)


@dataclass
class _Session:
    token: str
    sek: bytes
    expires_at: datetime


class NicIrpConnector:
    """Generate / Get / Cancel IRN against NIC's API (or the local sandbox, which speaks it)."""

    def __init__(
        self,
        base_url: str,
        credentials: NicCredentials,
        *,
        clock: Callable[[], datetime] | None = None,
        refresh_margin: timedelta = timedelta(minutes=10),
        timeout_seconds: float = 15.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._credentials = credentials
        key = serialization.load_pem_public_key(credentials.public_key_pem.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("the IRP public key must be an RSA key")
        self._public_key = key
        self._clock = clock or (lambda: datetime.now(UTC))
        self._refresh_margin = refresh_margin
        self._http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout_seconds)
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self.authentications = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self, session: _Session | None = None) -> dict[str, str]:
        c = self._credentials
        headers = {
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "Gstin": c.gstin,
            "user_name": c.username,
        }
        if session is not None:
            headers["AuthToken"] = session.token
        return headers

    async def _send(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise IrpUnavailable(f"the IRP could not be reached: {type(exc).__name__}") from exc
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise IrpUnavailable(f"the IRP answered HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise IrpUnavailable(f"the IRP answered HTTP {response.status_code} without JSON") from None
        if body.get("Status") != 1:
            errors = [
                (str(e.get("ErrorCode", "")), str(e.get("ErrorMessage", ""))[:300])
                for e in body.get("ErrorDetails") or []
            ] or [("", f"HTTP {response.status_code}")]
            existing = ""
            for info in body.get("InfoDtls") or []:
                if info.get("InfCd") == "DUPIRN":
                    existing = str((info.get("Desc") or {}).get("Irn", ""))
            raise IrpRefusal(errors, existing)
        return body

    async def _authenticate(self) -> _Session:
        app_key = secrets.token_bytes(32)
        c = self._credentials
        payload = json.dumps(
            {
                "UserName": c.username,
                "Password": c.password,
                "AppKey": base64.b64encode(app_key).decode(),
                "ForceRefreshAccessToken": True,
            }
        )
        data = base64.b64encode(self._public_key.encrypt(payload.encode(), rsa_padding.PKCS1v15())).decode()
        body = await self._send("POST", AUTH_PATH, json={"Data": data}, headers=self._headers())
        answer = body["Data"]
        self.authentications += 1
        sek = _aes_open(app_key, base64.b64decode(answer["Sek"]))
        return _Session(answer["AuthToken"], sek, parse_nic_time(answer["TokenExpiry"]))

    async def _current(self, *, renew: bool = False) -> _Session:
        async with self._lock:
            session = self._session
            if renew or session is None or session.expires_at - self._clock() <= self._refresh_margin:
                session = self._session = await self._authenticate()
            return session

    async def _call(self, method: str, path: str, payload: dict[str, Any] | str | None) -> dict[str, Any]:
        for renew in (False, True):
            session = await self._current(renew=renew)
            kw: dict[str, Any] = {"headers": self._headers(session)}
            if payload is not None:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                kw["json"] = {"Data": base64.b64encode(_aes(session.sek, text.encode())).decode()}
            try:
                body = await self._send(method, path, **kw)
            except IrpRefusal as refusal:
                if INVALID_TOKEN in refusal.codes and not renew:
                    continue
                raise
            return json.loads(_aes_open(session.sek, base64.b64decode(body["Data"])))
        raise AssertionError("unreachable")

    @staticmethod
    def _acknowledgement(answer: dict[str, Any]) -> Acknowledgement:
        return Acknowledgement(
            irn=answer["Irn"],
            ack_no=str(answer["AckNo"]),
            ack_at=parse_nic_time(answer["AckDt"]),
            signed_invoice=answer["SignedInvoice"],
            signed_qr_code=answer["SignedQRCode"],
            status=answer.get("Status", "ACT"),
        )

    async def generate(self, document_json: str) -> Acknowledgement:
        """Generate IRN. IrpRefusal with the IRP's codes (2150 carries the existing IRN); IrpUnavailable."""
        return self._acknowledgement(await self._call("POST", INVOICE_PATH, document_json))

    async def get(self, irn: str) -> Acknowledgement:
        """Get IRN details by IRN (2148 unknown, 2283 older than two days)."""
        return self._acknowledgement(await self._call("GET", f"{INVOICE_PATH}/irn/{irn}", None))

    async def cancel(self, irn: str, reason_code: str, remark: str) -> datetime:
        """Cancel IRN; the IRP's cancellation time. IrpRefusal 2270 after the 24 hours."""
        answer = await self._call(
            "POST", f"{INVOICE_PATH}/Cancel", {"Irn": irn, "CnlRsn": reason_code, "CnlRem": remark[:100]}
        )
        return parse_nic_time(answer["CancelDate"])
