from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.payments.domain.reconciliation import DiscrepancyKind as K
from services.payments.domain.reconciliation import Record, compare


def pay(provider_id: str, status: str = "captured", currency: str = "INR", amount: int = 1000) -> Record:
    return Record("payment", provider_id, status, currency, amount, our_id=f"pmt_{provider_id}")


def test_a_clean_comparison_finds_nothing():
    assert compare([pay("a"), pay("b")], [pay("b"), pay("a")]) == []


def test_each_kind_of_difference():
    findings = compare(
        [pay("only_ours"), pay("amount"), pay("currency"), pay("status", "authorized")],
        [pay("only_theirs"), pay("amount", amount=999), pay("currency", currency="USD"), pay("status")],
    )
    assert [(f.kind, f.provider_id) for f in findings] == [
        (K.AMOUNT_MISMATCH, "amount"), (K.CURRENCY_MISMATCH, "currency"), (K.MISSING_PROVIDER, "only_ours"),
        (K.MISSING_OURS, "only_theirs"), (K.STATUS_MISMATCH, "status"),
    ]
    assert findings[0].ours == "captured 1000 INR" and findings[0].theirs == "captured 999 INR"


def test_a_requested_refund_matches_the_providers_pending_one():
    ours = Record("refund", "rfnd_1", "requested", "INR", 500)
    assert compare([ours], [Record("refund", "rfnd_1", "pending", "INR", 500)]) == []
    assert compare([ours], [Record("refund", "rfnd_1", "processed", "INR", 500)])[0].kind is K.STATUS_MISMATCH


records = st.lists(st.builds(pay, st.sampled_from("abcdef"), st.sampled_from(["captured", "failed"]),
                             st.sampled_from(["INR", "USD"]), st.integers(100, 105)), max_size=6)


@given(records, records)
def test_comparing_a_side_with_itself_is_clean_and_every_id_on_one_side_only_is_reported(ours, theirs):
    assert compare(ours, ours) == []
    mine, provider = {r.provider_id for r in ours}, {r.provider_id for r in theirs}
    missing = {(f.kind, f.provider_id) for f in compare(ours, theirs) if f.kind in (K.MISSING_OURS,
                                                                                   K.MISSING_PROVIDER)}
    assert missing == {(K.MISSING_PROVIDER, i) for i in mine - provider} | {(K.MISSING_OURS, i)
                                                                            for i in provider - mine}
