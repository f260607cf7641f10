"""Protobuf <-> domain for invoicing's contract and events."""

from __future__ import annotations

from billing.invoicing.v1 import events_pb2, invoicing_pb2
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.domain.organisation import Organisation

ORGANISATION_CREATED = "billing.invoicing.v1.organisation.created"



def organisation_to_pb(organisation: Organisation) -> invoicing_pb2.Organisation:
    details = organisation.details
    return invoicing_pb2.Organisation(
        id=organisation.id,
        name=details.name,
        billing_email=details.billing_email,
        billing_currency=details.billing_currency,
        country=details.country,
        state_code=details.state_code,
        gstin=details.gstin,
        timezone=details.timezone,
        create_time=timestamp(organisation.created_at),
    )


def organisation_created(event_id: str, organisation: Organisation) -> events_pb2.OrganisationCreated:
    return events_pb2.OrganisationCreated(event_id=event_id, organisation=organisation_to_pb(organisation))
