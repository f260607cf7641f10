"""Protobuf <-> domain for prepaid credit grants, balances and the credit ledger (consumptions and claw-backs)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from billing.invoicing.v1 import invoicing_pb2
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.domain.credit import CreditBalance, CreditGrant, GrantSource
from services.invoicing.service.credits import CreditStatement

_SOURCES = {
    GrantSource.GRANTED: invoicing_pb2.CREDIT_GRANT_SOURCE_GRANTED,
    GrantSource.PURCHASED: invoicing_pb2.CREDIT_GRANT_SOURCE_PURCHASED,
    GrantSource.CREDIT_NOTE: invoicing_pb2.CREDIT_GRANT_SOURCE_CREDIT_NOTE,
    GrantSource.INVOICE: invoicing_pb2.CREDIT_GRANT_SOURCE_INVOICE,
}


def source_from_pb(value: int) -> str:
    """The domain's source for a request's enum; UNSPECIFIED is ``granted``."""
    if value == invoicing_pb2.CREDIT_GRANT_SOURCE_UNSPECIFIED:
        return GrantSource.GRANTED.value
    for source, number in _SOURCES.items():
        if number == value:
            return source.value
    raise InvalidArgument("must be GRANTED or CREDIT_NOTE", field="source")


def grant_to_pb(grant: CreditGrant, at: datetime, purchase_invoice_id: str = "") -> invoicing_pb2.CreditGrant:
    message = invoicing_pb2.CreditGrant(
        id=grant.id, organisation_id=grant.organisation_id, currency=grant.currency, amount_minor=grant.amount_minor,
        priority=grant.priority, source=_SOURCES[grant.source], source_id=grant.source_id,
        status=invoicing_pb2.CreditGrantStatus.Value(f"CREDIT_GRANT_STATUS_{grant.status.value.upper()}"),
        description=grant.description, consumed_minor=grant.consumed_minor, remaining_minor=grant.remaining_minor,
        expired=grant.expired(at), create_time=timestamp(grant.created_at), purchase_invoice_id=purchase_invoice_id,
        clawed_back_minor=grant.clawed_back_minor,
    )
    if grant.expires_at is not None:
        message.expire_time.CopyFrom(timestamp(grant.expires_at))
    if grant.voided_at is not None:
        message.void_time.CopyFrom(timestamp(grant.voided_at))
    return message


def balances_to_pb(balances: Sequence[CreditBalance]) -> list[invoicing_pb2.CreditBalance]:
    return [
        invoicing_pb2.CreditBalance(currency=b.currency, available_minor=b.available_minor,
                                    pending_minor=b.pending_minor)
        for b in balances
    ]


def statement_to_pb(statement: CreditStatement) -> invoicing_pb2.GetCreditBalanceResponse:
    response = invoicing_pb2.GetCreditBalanceResponse(
        balances=balances_to_pb(statement.balances),
        grants=[grant_to_pb(grant, statement.at) for grant in statement.grants],
    )
    for used in statement.consumptions:
        entry = response.consumptions.add(
            grant_id=used.grant_id, invoice_id=used.invoice_id, amount_minor=used.amount_minor,
            consume_time=timestamp(used.consumed_at),
            kind=invoicing_pb2.CreditLedgerKind.Value(f"CREDIT_LEDGER_KIND_{used.kind.value.upper()}"),
            refund_id=used.refund_id,
        )
        if used.released_at is not None:
            entry.release_time.CopyFrom(timestamp(used.released_at))
    return response
