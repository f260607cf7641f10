"""Service field paths as REST body paths."""

from __future__ import annotations

import pytest

from services.gateway.entrypoints.http.field_paths import in_terms, renamed


@pytest.mark.parametrize(("field", "rest"), [
    ("charges[0].charge.tiers[1].up_to", "terms.charges[0].charge.tiers[1].up_to"),
    ("quotas[2].metric_code", "terms.quotas[2].metric_code"),
    ("currency", "terms.currency"),
    ("base_fee", "terms.base_fee"),
    ("code", "code"),
    ("name", "name"),
    ("idempotency_key", "idempotency_key"),
    ("charges_extra", "charges_extra"),  # only whole names match
])
def test_terms_paths_get_the_terms_prefix(field, rest):
    assert in_terms(field) == rest


def test_renamed_changes_only_the_first_name():
    rename = renamed({"effective_time": "effective_at"})
    assert rename("effective_time") == "effective_at"
    assert rename("effective_time.seconds") == "effective_at.seconds"
    assert rename("rate") == "rate" and rename("x.effective_time") == "x.effective_time"
