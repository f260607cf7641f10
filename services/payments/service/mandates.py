"""An organisation's recurring mandate: made, listed, paused and cancelled by operators, or by the organisation's
own people (calls narrowed to its organisation); confirmed, rejected, paused and cancelled by Razorpay's token
webhooks (the rules are :mod:`services.payments.domain.mandate`'s). Its debits are listed for both.

Creating one stores it first (``created``, claimed by its idempotency key and by the one-live-mandate-per-
organisation index), then asks Razorpay outside the transaction for the customer (``fail_existing`` "0": asking
twice answers the same one) and the authorisation order (receipt = the mandate id: a retry after a lost answer
finds it instead of making a second), whose amount and currency are kept for Checkout to show. The customer then
authorises at Checkout with ``recurring: "1"`` (a hosted page where payments has one, else Razorpay's Standard
Checkout opened by the dashboard with the order, the customer and the key id); the bank's answer comes as
``token.confirmed`` or ``token.rejected``.

Token webhooks are deduplicated by event id (the webhook log) and only move a mandate forward, so a replayed or
late ``token.confirmed`` never revives a cancelled mandate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from billing_runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from billing_runtime.ids import new_id
from billing_runtime.logging import get_logger
from services.payments.domain.mandate import (
    CURRENCY,
    MAX_AMOUNT_MINOR,
    Debit,
    Mandate,
    MandateMethod,
    MandateState,
    advance,
)
from services.payments.domain.provider import FailureKind, ProviderFailure
from services.payments.service.ports import RecurringProvider, Unit, UnitFactory

log = get_logger(__name__)

TOKEN_EVENTS = {"token.confirmed": MandateState.CONFIRMED, "token.rejected": MandateState.REJECTED,
                "token.paused": MandateState.PAUSED, "token.cancelled": MandateState.CANCELLED}
NOTIFICATION_EVENTS = ("notification.delivered", "notification.failed")
DEFAULT_VALIDITY = timedelta(days=5 * 365)
MAX_VALIDITY = timedelta(days=30 * 365)


@dataclass(frozen=True)
class CreateMandate:
    organisation_id: str
    method: str
    max_amount_minor: int
    customer_name: str
    customer_email: str
    customer_contact: str = ""
    expire_at: datetime | None = None
    idempotency_key: str = ""


def _checked(command: CreateMandate, now: datetime) -> tuple[MandateMethod, datetime]:
    if not command.organisation_id or len(command.organisation_id) > 64:
        raise InvalidArgument("is required (at most 64 characters)", field="organisation_id")
    try:
        method = MandateMethod(command.method)
    except ValueError:
        raise InvalidArgument("must be card, upi or emandate", field="method") from None
    ceiling = MAX_AMOUNT_MINOR[method]
    if not 100 <= command.max_amount_minor <= ceiling:
        raise InvalidArgument(f"must be between 100 and {ceiling} paise for {method}", field="max_amount_minor")
    if not command.customer_name or len(command.customer_name) > 50:
        raise InvalidArgument("is required (at most 50 characters)", field="customer_name")
    if "@" not in command.customer_email or len(command.customer_email) > 64:
        raise InvalidArgument("must be an email address (at most 64 characters)", field="customer_email")
    if len(command.customer_contact) > 15:
        raise InvalidArgument("must be at most 15 characters", field="customer_contact")
    if len(command.idempotency_key) > 100:
        raise InvalidArgument("must be at most 100 characters", field="idempotency_key")
    expire_at = command.expire_at or now + DEFAULT_VALIDITY
    if not now + timedelta(days=1) <= expire_at <= now + MAX_VALIDITY:
        raise InvalidArgument("must be between a day and 30 years from now", field="expire_at")
    return method, expire_at


async def create(uow: UnitFactory, provider: RecurringProvider, command: CreateMandate, checkout_url_template: str,
                 now: datetime) -> tuple[Mandate, bool]:
    """A new mandate with its authorisation order (and a hosted Checkout link where ``checkout_url_template`` is
    set); (mandate, created). The same idempotency
    key answers the same mandate; a second live mandate for the organisation is refused."""
    method, expire_at = _checked(command, now)
    mandate = Mandate(id=new_id("mdt"), organisation_id=command.organisation_id, method=method,
                      state=MandateState.CREATED, max_amount_minor=command.max_amount_minor, expire_at=expire_at,
                      reason="waiting for the customer's authorisation")
    async with uow() as unit:
        earlier: Mandate | None = None
        if command.idempotency_key:
            earlier = await unit.mandates.by_key(command.idempotency_key)
        if earlier is not None:
            if earlier.organisation_id != command.organisation_id:
                raise InvalidArgument("was used for another organisation", field="idempotency_key")
            if earlier.auth_order_id:
                return earlier, False
            mandate = earlier  # stored before, its provider calls not finished: finish them
        elif not await unit.mandates.add(mandate, command.idempotency_key):
            live = await unit.mandates.live(command.organisation_id)
            raise AlreadyExists(f"organisation {command.organisation_id} has a {live.state if live else 'live'} "
                                "mandate: cancel it before making another")
    try:
        customer_id = await provider.create_recurring_customer(command.customer_name, command.customer_email,
                                                               command.customer_contact)
        notes = {"organisation_id": command.organisation_id, "mandate_id": mandate.id}
        order = await provider.find_order(mandate.id) or await provider.create_authorisation_order(
            customer_id, method.value, command.max_amount_minor, expire_at, mandate.id, notes)
    except ProviderFailure as failure:
        log.warning("mandate not made at the provider", mandate_id=mandate.id, error=str(failure))
        refused = failure.kind is FailureKind.REJECTED
        if refused or not command.idempotency_key:
            # Nothing can finish it later: it must not stand in the way of the next attempt.
            async with uow() as unit:
                await unit.mandates.update(mandate.id, state=MandateState.CANCELLED,
                                           reason=f"not made at Razorpay: {failure}")
        if refused:
            raise FailedPrecondition(f"Razorpay refused the mandate: {failure.description or failure.code}"[:300]) \
                from None
        raise Unavailable(f"Razorpay did not make the mandate ({failure}); retry with the same idempotency key") \
            from None
    url = ""
    if checkout_url_template:
        url = checkout_url_template.replace("{order_id}", order.id)
        url += ("&" if "?" in url else "?") + f"recurring=1&customer_id={customer_id}"
    # What Checkout shows while the customer authorises: the order's own amount, as Razorpay made it.
    made_order = {"customer_id": customer_id, "auth_order_id": order.id, "checkout_url": url,
                  "auth_amount_minor": order.amount_minor, "auth_currency": order.currency or CURRENCY}
    async with uow() as unit:
        await unit.mandates.update(mandate.id, **made_order)
    made = replace(mandate, **made_order)
    log.info("mandate created", mandate_id=made.id, organisation_id=made.organisation_id, method=str(method))
    return made, True


async def list_mandates(uow: UnitFactory, organisation_id: str, include_finished: bool) -> list[Mandate]:
    if len(organisation_id) > 64:
        raise InvalidArgument("must be at most 64 characters", field="organisation_id")
    async with uow() as unit:
        return await unit.mandates.list(organisation_id, include_finished)


async def debit_of(uow: UnitFactory, invoice_id: str) -> Debit | None:
    """An invoice's debit on its organisation's mandate, if it has one."""
    if len(invoice_id) > 64:
        raise InvalidArgument("must be at most 64 characters", field="invoice_id")
    async with uow() as unit:
        return await unit.mandates.debit(invoice_id)


MAX_DEBITS_LISTED = 200  # sixteen years of monthly invoices


async def debits(uow: UnitFactory, mandate_id: str, organisation_id: str = "") -> list[Debit]:
    """The mandate's debits, the latest due first (at most :data:`MAX_DEBITS_LISTED`). ``organisation_id``: the
    mandate must be that organisation's (another's is not found, as an unknown one)."""
    async with uow() as unit:
        await _mandate(unit, mandate_id, organisation_id)
        return await unit.mandates.debits_of(mandate_id, MAX_DEBITS_LISTED)


async def _mandate(unit: Unit, mandate_id: str, organisation_id: str) -> Mandate:
    """The mandate, if it is ``organisation_id``'s when that is given; NotFound otherwise."""
    if not mandate_id:
        raise InvalidArgument("is required", field="mandate_id")
    if len(mandate_id) > 64 or len(organisation_id) > 64:
        raise NotFound(f"no mandate {mandate_id[:64]!r}")
    mandate: Mandate | None = await unit.mandates.get(mandate_id)
    if mandate is None or (organisation_id and mandate.organisation_id != organisation_id):
        raise NotFound(f"no mandate {mandate_id!r}")
    return mandate


async def _stop(uow: UnitFactory, provider: RecurringProvider, mandate_id: str, to: MandateState,
                organisation_id: str = "") -> Mandate:
    async with uow() as unit:
        mandate = await _mandate(unit, mandate_id, organisation_id)
    if to is MandateState.PAUSED and mandate.state is not MandateState.CONFIRMED:
        raise FailedPrecondition(f"mandate {mandate_id} is {mandate.state}: only a confirmed mandate can be paused")
    if not advance(mandate.state, to).moved:
        if mandate.state is to:
            return mandate
        raise FailedPrecondition(f"mandate {mandate_id} is {mandate.state} and cannot be {to}")
    if mandate.token_id:
        try:
            if to is MandateState.PAUSED:
                await provider.pause_token(mandate.customer_id, mandate.token_id)
            else:
                await provider.cancel_token(mandate.customer_id, mandate.token_id)
        except ProviderFailure as failure:
            raise Unavailable(f"Razorpay did not {'pause' if to is MandateState.PAUSED else 'cancel'} the token "
                              f"({failure}); retry") from None
    async with uow() as unit:
        current: Mandate | None = await unit.mandates.get(mandate_id, lock=True)
        assert current is not None
        moved = advance(current.state, to)
        if moved.moved:
            # A call narrowed to the organisation is its own people's (the customer's API); an operator's is not.
            who = "the organisation" if organisation_id else "an operator"
            reason = f"{'paused' if to is MandateState.PAUSED else 'cancelled'} by {who}"
            await unit.mandates.update(mandate_id, state=moved.state, reason=reason)
            current = replace(current, state=moved.state, reason=reason)
    return current


async def pause(uow: UnitFactory, provider: RecurringProvider, mandate_id: str, organisation_id: str = "") -> Mandate:
    """Stop debiting on the mandate (invoices are then collected as without one); Razorpay pauses the token. A
    paused mandate is not resumed (states only move forward): cancel it and make another to debit again.
    ``organisation_id``: the organisation's own request (another's mandate is not found)."""
    return await _stop(uow, provider, mandate_id, MandateState.PAUSED, organisation_id)


async def cancel(uow: UnitFactory, provider: RecurringProvider, mandate_id: str, organisation_id: str = "") -> Mandate:
    """End the mandate for good; Razorpay cancels the token. A new one can be made afterwards."""
    return await _stop(uow, provider, mandate_id, MandateState.CANCELLED, organisation_id)


async def apply_webhook(unit: Unit, event: str, body: bytes, now: datetime) -> str:
    """Apply a token.* or notification.* webhook (already claimed in the webhook log); returns the outcome."""
    entity = _entity(body, "notification" if event in NOTIFICATION_EVENTS else "token")
    if entity is None:
        return f"malformed: {event} carries no entity"
    if event in NOTIFICATION_EVENTS:
        from services.payments.service import autodebit  # the debit's own rules

        return await autodebit.notified(unit, entity, event == "notification.delivered", now)
    reported = TOKEN_EVENTS[event]
    details = entity.get("recurring_details") if isinstance(entity.get("recurring_details"), dict) else {}
    mandate: Mandate | None = await unit.mandates.by_provider(
        _text(entity.get("id")), _text(entity.get("customer_id")), _text(entity.get("order_id")), lock=True)
    if mandate is None:
        return f"unmatched: no mandate of ours for token {_text(entity.get('id'))}"
    changes: dict[str, Any] = {}
    if not mandate.token_id and _text(entity.get("id")):
        changes["token_id"] = _text(entity.get("id"))
    moved = advance(mandate.state, reported)
    if moved.moved:
        changes.update(state=moved.state,
                       reason=_text(details.get("failure_reason")) or f"{event} from Razorpay")
    if changes:
        await unit.mandates.update(mandate.id, **changes)
    if not moved.moved:
        return f"no change: mandate {mandate.id} is already {mandate.state}"
    log.info("mandate moved", mandate_id=mandate.id, state=str(moved.state), webhook_event=event)
    return f"applied: mandate {mandate.id} {moved.state}"


def _entity(body: bytes, name: str) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
        entity = document["payload"][name]["entity"]
    except (ValueError, KeyError, TypeError):
        return None
    return entity if isinstance(entity, dict) else None


def _text(value: object) -> str:
    return str(value)[:200] if isinstance(value, str | int) and not isinstance(value, bool) else ""

