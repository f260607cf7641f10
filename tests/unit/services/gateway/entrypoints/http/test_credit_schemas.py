"""The credit statement's REST shape renders both kinds of ledger entry and what refunds took back of a grant."""

from __future__ import annotations

from datetime import UTC, datetime

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.timestamps import to_timestamp
from services.gateway.entrypoints.http.credit_schemas import CreditStatement

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)


def test_the_ledger_names_its_kinds_and_a_grant_what_was_clawed_back() -> None:
    message = pb.GetCreditBalanceResponse(
        balances=[pb.CreditBalance(currency="INR", available_minor=0)],
        grants=[pb.CreditGrant(id="crg_1", currency="INR", amount_minor=150_000, consumed_minor=117_882,
                               clawed_back_minor=32_118, remaining_minor=0,
                               status=pb.CREDIT_GRANT_STATUS_AVAILABLE, source=pb.CREDIT_GRANT_SOURCE_PURCHASED)],
        consumptions=[
            pb.CreditConsumption(grant_id="crg_1", invoice_id="inv_topup", amount_minor=32_118,
                                 consume_time=to_timestamp(AT), kind=pb.CREDIT_LEDGER_KIND_CLAWBACK,
                                 refund_id="rfd_1"),
            pb.CreditConsumption(grant_id="crg_1", invoice_id="inv_may", amount_minor=117_882,
                                 consume_time=to_timestamp(AT), kind=pb.CREDIT_LEDGER_KIND_INVOICE),
        ],
    )
    statement = CreditStatement.from_pb(message).model_dump()
    assert [(c["kind"], c["invoice_id"], c["refund_id"], c["amount_minor"]) for c in statement["consumptions"]] == [
        ("clawback", "inv_topup", "rfd_1", 32_118), ("invoice", "inv_may", "", 117_882)]
    [grant] = statement["grants"]
    assert (grant["consumed_minor"], grant["clawed_back_minor"], grant["remaining_minor"]) == (117_882, 32_118, 0)
