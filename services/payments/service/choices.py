"""Which provider an organisation's invoices are collected through.

The choice is payments' own (a row per organisation in ``payments.organisation_providers``), not a field of the
organisation in invoicing: it decides where payments makes orders, and no service reads another's tables.
An organisation without a choice gets the deployment's default (``PAYMENTS_DEFAULT_PROVIDER``, Razorpay unless
set). A choice applies to invoices issued after it; those already being collected keep their order's provider.
"""

from __future__ import annotations

from billing_runtime.errors import InvalidArgument
from services.payments.domain.payment import Provider
from services.payments.service.ports import Providers, UnitFactory


async def get_choice(uow: UnitFactory, providers: Providers, organisation_id: str) -> tuple[Provider, bool]:
    """(provider, own): the organisation's choice, or the default (own False)."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    async with uow() as unit:
        chosen: Provider | None = await unit.choices.get(organisation_id)
    return (chosen, True) if chosen is not None else (providers.default, False)


async def set_choice(uow: UnitFactory, providers: Providers, organisation_id: str,
                     provider: Provider | None) -> tuple[Provider, bool]:
    """Choose ``provider`` for the organisation (None: forget its choice); returns what now applies."""
    if not organisation_id:
        raise InvalidArgument("is required", field="organisation_id")
    if provider is not None:
        if not provider.online:
            raise InvalidArgument("must be razorpay or stripe", field="provider")
        providers.required(provider)  # a choice nothing could collect through is refused now, not at issue time
    async with uow() as unit:
        await unit.choices.set(organisation_id, provider)
    return (provider, True) if provider is not None else (providers.default, False)
