"""The REST shapes of the admin API (and so of the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from billing.ingest.v1 import ingest_pb2
from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.timestamps import from_timestamp

Item = TypeVar("Item")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganisationCreate(Request):
    name: str = Field(examples=["Acme Analytics Pvt Ltd"])
    billing_email: str = Field(examples=["billing@acme.example"])
    billing_currency: str = Field(description="ISO 4217 code", examples=["INR"])
    country: str = Field(description="ISO 3166-1 alpha-2 code", examples=["IN"])
    state_code: str = Field("", description="GST state code when country is IN (e.g. 29 Karnataka)",
                            examples=["29"])
    gstin: str = Field("", description="15-character GSTIN, validated with its check character",
                       examples=["29ABCDE1234F1ZW"])
    timezone: str = Field("UTC", description="IANA zone; billing periods are cut in it", examples=["Asia/Kolkata"])
    billing_address: str = Field("", max_length=300, description="address lines (street, city, PIN), one a line; "
                                 "an e-invoiced customer's needs its 6-digit PIN", examples=["42 Residency Road\n"
                                 "Bengaluru 560025"])


class Organisation(BaseModel):
    id: str
    name: str
    billing_email: str
    billing_currency: str
    country: str
    state_code: str
    gstin: str
    timezone: str
    created_at: datetime
    billing_address: str = ""

    @classmethod
    def from_pb(cls, message: invoicing_pb2.Organisation) -> Organisation:
        return cls(
            id=message.id, name=message.name, billing_email=message.billing_email,
            billing_currency=message.billing_currency, country=message.country, state_code=message.state_code,
            gstin=message.gstin, timezone=message.timezone, created_at=from_timestamp(message.create_time),
            billing_address=message.billing_address,
        )


class ProjectCreate(Request):
    organisation_id: str
    name: str = Field(examples=["production"])


class Project(BaseModel):
    id: str
    organisation_id: str
    name: str
    created_at: datetime

    @classmethod
    def from_pb(cls, message: ingest_pb2.Project) -> Project:
        return cls(id=message.id, organisation_id=message.organisation_id, name=message.name,
                   created_at=from_timestamp(message.create_time))


class ApiKeyCreate(Request):
    project_id: str
    name: str = Field("", examples=["backend"])
    expires_at: datetime | None = Field(None, description="Optional; must be in the future")


_STATES = {
    ingest_pb2.API_KEY_STATE_ACTIVE: "active",
    ingest_pb2.API_KEY_STATE_EXPIRED: "expired",
    ingest_pb2.API_KEY_STATE_REVOKED: "revoked",
}


class ApiKey(BaseModel):
    """An API key as listed: never its secret."""

    id: str
    project_id: str
    name: str
    prefix: str = Field(description="The visible start of the key, to tell keys apart")
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_pb(cls, message: ingest_pb2.ApiKey) -> ApiKey:
        return cls(
            id=message.id, project_id=message.project_id, name=message.name, prefix=message.prefix,
            state=_STATES[message.state], created_at=from_timestamp(message.create_time),
            expires_at=from_timestamp(message.expire_time), revoked_at=from_timestamp(message.revoke_time),
        )


class ApiKeyWithSecret(ApiKey):
    secret: str = Field(description="The full key. Shown in this response only; store it now.")


class Page(BaseModel, Generic[Item]):
    data: list[Item]
    next_page_token: str = Field(description="Pass as page_token for the next page; empty on the last page")


class AuditEntry(BaseModel):
    id: int
    request_id: str
    actor: str = Field(description="admin-token, user:<id> (a staff user), prj_... (a project's key holder), or the "
                       "email tried in a failed sign-in (clipped)")
    role: str = Field(description="The staff actor's role; empty for key holders")
    action: str
    resource_type: str
    resource_id: str
    created_at: datetime
    source_ip: str = Field(description="Where the request came from (X-Forwarded-For only through trusted proxies)")
    reason: str = Field(description="Why, where the action requires it (voids, refunds, price changes)")
    before: dict[str, Any] | None = Field(description="What the write changed, as it was")
    after: dict[str, Any] | None = Field(description="... and as it became")


class Error(BaseModel):
    error: str = Field(examples=["invalid_argument"])
    detail: str = Field(examples=["gstin: check character is '5' but should be 'W'; the GSTIN has a typo"])
    field: str | None = Field(None, examples=["gstin"])


class ServiceHealth(BaseModel):
    status: Literal["serving", "not_serving", "unknown", "service_unknown", "unreachable"]
    address: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    services: dict[str, ServiceHealth]
