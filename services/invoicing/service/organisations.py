"""Creating, reading and listing organisations."""

from __future__ import annotations

from dataclasses import dataclass

from billing_runtime import paging
from billing_runtime.errors import InvalidArgument, NotFound
from billing_runtime.ids import new_id
from services.invoicing.adapters import messages
from services.invoicing.domain.organisation import Organisation, validate_details
from services.invoicing.service.ports import EventOutbox, InvoicingTransaction


@dataclass(frozen=True)
class CreateOrganisation:
    name: str
    billing_email: str
    billing_currency: str
    country: str
    state_code: str = ""
    gstin: str = ""
    timezone: str = ""
    idempotency_key: str = ""
    billing_address: str = ""


async def create_organisation(
    uow: InvoicingTransaction, outbox: EventOutbox, command: CreateOrganisation
) -> tuple[Organisation, bool]:
    """Validate, store and announce a new organisation. Returns (organisation, created)."""
    details = validate_details(
        name=command.name,
        billing_email=command.billing_email,
        billing_currency=command.billing_currency,
        country=command.country,
        state_code=command.state_code,
        gstin=command.gstin,
        timezone=command.timezone,
        billing_address=command.billing_address,
    )
    async with uow:
        organisation, created = await uow.organisations.add(new_id("org"), details, command.idempotency_key)
        if created:
            event_id = new_id("evt")
            await outbox.record(
                uow, messages.ORGANISATION_CREATED, event_id, messages.organisation_created(event_id, organisation)
            )
    return organisation, created


async def existing_organisation(
    uow: InvoicingTransaction, organisation_id: str, *, lock: bool = False
) -> Organisation:
    """The organisation, inside an open transaction (locked until it ends with ``lock``); NotFound if unknown."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    organisation = await uow.organisations.get(organisation_id, for_update=lock)
    if organisation is None:
        raise NotFound(f"no organisation with id {organisation_id!r}")
    return organisation


async def get_organisation(uow: InvoicingTransaction, organisation_id: str) -> Organisation:
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    async with uow:
        organisation = await uow.organisations.get(organisation_id)
    if organisation is None:
        raise NotFound(f"no organisation with id {organisation_id!r}")
    return organisation


async def list_organisations(
    uow: InvoicingTransaction, page_size: int, page_token: str
) -> tuple[list[Organisation], str]:
    """One page, oldest first, and the token of the next page ('' on the last)."""
    size, after = paging.page_size(page_size), paging.page_after(page_token)
    async with uow:
        organisations = await uow.organisations.list(limit=size + 1, after=after)
    return paging.split_page(organisations, size)
