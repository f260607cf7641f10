"""What the IRP does, in NIC's API shapes: authentication with an AppKey encrypted to the sandbox's public key (the
answer carries the session key ``Sek`` encrypted with the AppKey and an AuthToken with its expiry), and Generate /
Get / Cancel IRN with payloads AES-256-ECB encrypted with the Sek.

Error codes are NIC's published ones: 1005 invalid token, 1008 invalid login, 1010 invalid client id/secret,
1013 AppKey decryption failed, 2148 IRN not available, 2150 duplicate IRN (with the existing IRN in ``InfoDtls``,
``InfCd`` "DUPIRN"), 2270 cancellation after the 24 hours, 2283 details no longer available (older than 2 days),
and the document checks (2140, 2172, 2182, 2189, 2193 ...). A document is validated with invoicing's own checks
(``services/invoicing/domain/einvoice_checks.py``): the sandbox stands in for the portal's answers, not as a second
opinion on the rules.

Its clock is ``now()``: the wall clock moved by ``offset``, which tests set through the control API.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import jwt
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from sandboxes.irp.keys import KeyPair, load_or_make
from sandboxes.irp.settings import IrpSandboxSettings
from services.invoicing.domain.einvoice import DocumentType, irn, loads
from services.invoicing.domain.einvoice_checks import problems

IST = timezone(timedelta(hours=5, minutes=30), "IST")
NIC_TIME = "%Y-%m-%d %H:%M:%S"
ISSUER = "NIC Sandbox"
# NIC's code for cancelling an IRN already cancelled is not in the list we read; the sandbox answers 9999 with the
# message NIC's portal shows.
ALREADY_CANCELLED = "9999"


class IrpError(Exception):
    """An IRP answer with ``Status`` 0: error details, optionally info details (the existing IRN of a duplicate)."""

    def __init__(self, code: str, message: str, info: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.errors = [{"ErrorCode": code, "ErrorMessage": message}]
        self.info = info

    @classmethod
    def many(cls, errors: list[tuple[str, str]]) -> IrpError:
        error = cls(*errors[0])
        error.errors = [{"ErrorCode": code, "ErrorMessage": message} for code, message in errors]
        return error

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"Status": 0, "ErrorDetails": self.errors, "Data": None}
        if self.info is not None:
            body["InfoDtls"] = self.info
        return body


def aes_encrypt(key: bytes, plain: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - NIC's scheme is AES-ECB
    return encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()


def aes_decrypt(key: bytes, cipher_text: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(cipher_text) + decryptor.finalize()) + unpadder.finalize()


@dataclass
class Session:
    token: str
    sek: bytes
    gstin: str
    expires_at: datetime


@dataclass
class Registration:
    irn: str
    ack_no: int
    ack_dt: str  # NIC_TIME in IST
    gstin: str
    document: str  # the JSON text as received
    signed_invoice: str
    signed_qr: str
    status: str = "ACT"
    cancel_date: str = ""

    def answer(self) -> dict[str, Any]:
        return {
            "AckNo": self.ack_no,
            "AckDt": self.ack_dt,
            "Irn": self.irn,
            "SignedInvoice": self.signed_invoice,
            "SignedQRCode": self.signed_qr,
            "Status": self.status,
            "EwbNo": None,
            "EwbDt": None,
            "EwbValidTill": None,
        }


@dataclass
class Irp:
    settings: IrpSandboxSettings
    auth_keys: KeyPair
    signing_keys: KeyPair
    offset: timedelta = timedelta(0)
    down: int = 0  # the next N API calls answer 503 (an outage); -1 until told otherwise
    sessions: dict[str, Session] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)
    next_ack: int = 112610000000001

    @classmethod
    def from_settings(cls, settings: IrpSandboxSettings) -> Irp:
        irp = cls(settings, load_or_make(settings.key_dir, "auth"), load_or_make(settings.key_dir, "signing"))
        if settings.state_file is not None and settings.state_file.exists():
            saved = json.loads(settings.state_file.read_text())
            irp.registrations = {r["irn"]: Registration(**r) for r in saved["registrations"]}
            irp.next_ack = saved["next_ack"]
        return irp

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def _save(self) -> None:
        if self.settings.state_file is None:
            return
        body = {"next_ack": self.next_ack, "registrations": [asdict(r) for r in self.registrations.values()]}
        tmp = self.settings.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self.settings.state_file)

    def take_outage(self) -> bool:
        if self.down == 0:
            return False
        if self.down > 0:
            self.down -= 1
        return True

    # --- authentication ------------------------------------------------------------------------------------------

    def authenticate(self, headers: dict[str, str], data: str) -> dict[str, Any]:
        if headers.get("client_id") != self.settings.client_id or (
            headers.get("client_secret") != self.settings.client_secret
        ):
            raise IrpError("1010", "Invalid Client-ID/Client-Secret")
        try:
            plain = self.auth_keys.private.decrypt(base64.b64decode(data), rsa_padding.PKCS1v15())
            payload = json.loads(plain)
            app_key = base64.b64decode(payload["AppKey"])
        except (ValueError, KeyError, TypeError):
            raise IrpError("1013", "Decryption of password failed") from None
        if len(app_key) != 32:
            raise IrpError("1013", "Decryption of password failed")
        if payload.get("UserName") != self.settings.username or payload.get("Password") != self.settings.password:
            raise IrpError("1008", "Invalid login credentials")
        gstin = headers.get("gstin", "")
        session = Session(
            secrets.token_urlsafe(18),
            secrets.token_bytes(32),
            gstin,
            self.now() + timedelta(minutes=self.settings.token_minutes),
        )
        self.sessions[session.token] = session
        return {
            "ClientId": self.settings.client_id,
            "UserName": self.settings.username,
            "AuthToken": session.token,
            "Sek": base64.b64encode(aes_encrypt(app_key, session.sek)).decode(),
            "TokenExpiry": session.expires_at.astimezone(IST).strftime(NIC_TIME),
        }

    def session(self, headers: dict[str, str]) -> Session:
        session = self.sessions.get(headers.get("authtoken", ""))
        if (
            session is None
            or session.expires_at <= self.now()
            or headers.get("client_id") != self.settings.client_id
            or headers.get("user_name") != self.settings.username
            or headers.get("gstin") != session.gstin
        ):
            raise IrpError("1005", "Invalid Token")
        return session

    @staticmethod
    def decrypt(session: Session, data: str) -> bytes:
        try:
            return aes_decrypt(session.sek, base64.b64decode(data))
        except ValueError:
            raise IrpError("2140", "Error while validating invoice: the payload could not be decrypted") from None

    @staticmethod
    def encrypt(session: Session, answer: dict[str, Any]) -> str:
        return base64.b64encode(aes_encrypt(session.sek, json.dumps(answer).encode())).decode()

    # --- IRNs ----------------------------------------------------------------------------------------------------

    def generate(self, session: Session, plain: bytes) -> dict[str, Any]:
        try:
            document = loads(plain)
        except ValueError:
            raise IrpError("2140", "Error while validating invoice: the payload is not JSON") from None
        today = self.now().astimezone(IST).date()
        found = problems(document, today=today)
        if found:
            raise IrpError.many([(p.code, f"{p.field}: {p.detail}") for p in found])
        seller_gstin = document["SellerDtls"]["Gstin"]
        if seller_gstin != session.gstin:
            raise IrpError("2143", "Invoice does not belongs to the user GSTIN")
        doc = document["DocDtls"]
        day = datetime.strptime(doc["Dt"], "%d/%m/%Y").date()
        number = irn(seller_gstin, day, DocumentType(doc["Typ"]), doc["No"])
        existing = self.registrations.get(number)
        if existing is not None:
            raise IrpError(
                "2150",
                "Duplicate IRN",
                info=[
                    {
                        "InfCd": "DUPIRN",
                        "Desc": {"AckNo": existing.ack_no, "AckDt": existing.ack_dt, "Irn": existing.irn},
                    }
                ],
            )
        ack_dt = self.now().astimezone(IST).strftime(NIC_TIME)
        ack_no, self.next_ack = self.next_ack, self.next_ack + 1
        items = document["ItemList"]
        main = max(items, key=lambda item: Decimal(str(item.get("AssAmt", 0))))
        qr_claims = {
            "SellerGstin": seller_gstin,
            "BuyerGstin": document["BuyerDtls"]["Gstin"],
            "DocNo": doc["No"],
            "DocTyp": doc["Typ"],
            "DocDt": doc["Dt"],
            "TotInvVal": float(document["ValDtls"]["TotInvVal"]),
            "ItemCnt": len(items),
            "MainHsnCode": main["HsnCd"],
            "Irn": number,
            "IrnDt": ack_dt,
        }
        invoice_claims = {**json.loads(plain), "Irn": number, "AckNo": ack_no, "AckDt": ack_dt}
        registration = Registration(
            irn=number,
            ack_no=ack_no,
            ack_dt=ack_dt,
            gstin=seller_gstin,
            document=plain.decode(),
            signed_invoice=self._sign(invoice_claims),
            signed_qr=self._sign(qr_claims),
        )
        self.registrations[number] = registration
        self._save()
        return registration.answer()

    def _sign(self, claims: dict[str, Any]) -> str:
        # As NIC signs: the claims travel as a JSON string in "data", issued by the IRP.
        return jwt.encode({"data": json.dumps(claims), "iss": ISSUER}, self.signing_keys.private_pem, algorithm="RS256")

    def get(self, session: Session, number: str) -> dict[str, Any]:
        registration = self._own(session, number)
        acknowledged = datetime.strptime(registration.ack_dt, NIC_TIME).replace(tzinfo=IST)
        if self.now() - acknowledged > timedelta(days=self.settings.fetch_days):
            raise IrpError("2283", "IRN details cannot be provided as it is generated more than 2 days prior")
        return registration.answer()

    def cancel(self, session: Session, plain: bytes) -> dict[str, Any]:
        try:
            request = json.loads(plain)
            number, reason = str(request["Irn"]), str(request["CnlRsn"])
        except (ValueError, KeyError, TypeError):
            raise IrpError("2140", "Error while validating the cancel request") from None
        if reason not in ("1", "2", "3", "4"):
            raise IrpError("2140", "CnlRsn must be 1 (duplicate), 2 (data entry mistake), 3 (order cancelled) or 4")
        registration = self._own(session, number)
        if registration.status == "CNL":
            raise IrpError(ALREADY_CANCELLED, "IRN is already cancelled")
        acknowledged = datetime.strptime(registration.ack_dt, NIC_TIME).replace(tzinfo=IST)
        if self.now() - acknowledged > timedelta(hours=self.settings.cancel_hours):
            raise IrpError("2270", "The allowed cancellation time limit is crossed, you cannot cancel the IRN")
        registration.status = "CNL"
        registration.cancel_date = self.now().astimezone(IST).strftime(NIC_TIME)
        self._save()
        return {"Irn": number, "CancelDate": registration.cancel_date}

    def _own(self, session: Session, number: str) -> Registration:
        registration = self.registrations.get(number)
        if registration is None:
            raise IrpError("2148", "Requested IRN data is not available")
        if registration.gstin != session.gstin:
            raise IrpError("2143", "Invoice does not belongs to the user GSTIN")
        return registration
