"""The organisation (billed account) and the validation of its billing details."""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from dataclasses import asdict, dataclass
from datetime import datetime

import pycountry

from billing_runtime.errors import InvalidArgument
from services.invoicing.domain import currencies, gst

MAX_NAME_LENGTH = 200
MAX_ADDRESS_LENGTH = 300
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


@dataclass(frozen=True)
class OrganisationDetails:
    """What a client supplies to create an organisation, normalised (trimmed, upper-cased codes)."""

    name: str
    billing_email: str
    billing_currency: str
    country: str
    state_code: str = ""
    gstin: str = ""
    timezone: str = "UTC"
    # Lines of the billing address (street, city and PIN): printed on invoices; an e-invoice needs its PIN.
    billing_address: str = ""

    def fingerprint(self) -> str:
        """Stable digest of the request, so an idempotency key reused with another body is caught (a request
        without an address digests as it did before addresses existed)."""
        values = asdict(self)
        if not values["billing_address"]:
            del values["billing_address"]
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Organisation:
    id: str
    details: OrganisationDetails
    created_at: datetime


def validate_details(
    *,
    name: str,
    billing_email: str,
    billing_currency: str,
    country: str,
    state_code: str = "",
    gstin: str = "",
    timezone: str = "",
    billing_address: str = "",
) -> OrganisationDetails:
    """Normalise and validate billing details; raises InvalidArgument naming the first bad field."""
    details = OrganisationDetails(
        name=name.strip(),
        billing_email=billing_email.strip(),
        billing_currency=billing_currency.strip().upper(),
        country=country.strip().upper(),
        state_code=state_code.strip().upper(),
        gstin=gstin.strip().upper(),
        timezone=timezone.strip() or "UTC",
        billing_address="\n".join(line.strip() for line in billing_address.strip().splitlines() if line.strip()),
    )
    if len(details.billing_address) > MAX_ADDRESS_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_ADDRESS_LENGTH} characters", field="billing_address")
    if any(ord(c) < 32 and c != "\n" for c in details.billing_address):
        raise InvalidArgument("must not contain control characters", field="billing_address")
    if not details.name:
        raise InvalidArgument("is required", field="name")
    if len(details.name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"must be at most {MAX_NAME_LENGTH} characters", field="name")
    if not details.billing_email:
        raise InvalidArgument("is required", field="billing_email")
    if not _EMAIL.fullmatch(details.billing_email) or len(details.billing_email) > 254:
        raise InvalidArgument(f"{details.billing_email!r} is not an email address", field="billing_email")
    if not details.billing_currency:
        raise InvalidArgument("is required (an ISO 4217 code such as INR or USD)", field="billing_currency")
    if not currencies.is_invoiceable(details.billing_currency):
        raise InvalidArgument(
            f"{details.billing_currency!r} is not an ISO 4217 currency code", field="billing_currency"
        )
    _validate_place(details)
    try:
        zoneinfo.ZoneInfo(details.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(
            f"{details.timezone!r} is not an IANA time zone such as Asia/Kolkata", field="timezone"
        ) from None
    return details


def _validate_place(details: OrganisationDetails) -> None:
    if not details.country:
        raise InvalidArgument("is required (an ISO 3166-1 alpha-2 code such as IN)", field="country")
    if len(details.country) != 2 or pycountry.countries.get(alpha_2=details.country) is None:
        raise InvalidArgument(f"{details.country!r} is not an ISO 3166-1 alpha-2 country code", field="country")
    if details.country == "IN":
        if not details.state_code:
            raise InvalidArgument("is required for organisations in India (GST state code, e.g. 29)",
                                  field="state_code")
        if details.state_code not in gst.STATE_CODES:
            raise InvalidArgument(f"{details.state_code!r} is not a GST state code", field="state_code")
        if details.gstin:
            problem = gst.gstin_problem(details.gstin, details.state_code)
            if problem:
                raise InvalidArgument(problem, field="gstin")
        return
    if details.gstin:
        raise InvalidArgument("applies only to organisations in India (country IN)", field="gstin")
    if details.state_code and (
        pycountry.subdivisions.get(code=f"{details.country}-{details.state_code}") is None
    ):
        raise InvalidArgument(
            f"{details.state_code!r} is not a subdivision of {details.country} (ISO 3166-2)", field="state_code"
        )
