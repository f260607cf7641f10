"""Price overrides between protobuf and the domain (``domain/price_override.py``)."""

from __future__ import annotations

from typing import Any

from billing.invoicing.v1 import invoicing_pb2 as pb
from billing_runtime.timestamps import to_timestamp as timestamp
from services.invoicing.adapters.catalog_messages import charge_from_pb, charge_to_pb
from services.invoicing.domain.price_override import PriceOverride, override_terms_to_dict


def override_terms_from_pb(terms: pb.PriceOverrideTerms) -> dict[str, Any]:
    """The terms a client sent, as the data ``price_override.validate_override_terms`` checks."""
    data: dict[str, Any] = {
        "charges": [{"metric_code": c.metric_code, "charge": charge_from_pb(c.charge)} for c in terms.charges]
    }
    if terms.currency:
        data["currency"] = terms.currency
    if terms.base_fee:
        data["base_fee"] = terms.base_fee
    return data


def price_override_to_pb(override: PriceOverride) -> pb.PriceOverride:
    data = override_terms_to_dict(override.terms)
    terms = pb.PriceOverrideTerms(currency=data["currency"], base_fee=data["base_fee"] or "")
    for charge in data["charges"]:
        terms.charges.add(metric_code=charge["metric_code"], charge=charge_to_pb(charge["charge"]))
    return pb.PriceOverride(
        id=override.id,
        organisation_id=override.organisation_id,
        plan_id=override.plan_id,
        plan_code=override.plan_code,
        version=override.version,
        effective_time=timestamp(override.effective_from),
        terms=terms,
        cleared=override.terms.cleared,
        create_time=timestamp(override.created_at),
    )
