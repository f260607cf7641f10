"""E-invoicing settings are checked at start-up: on without credentials, or with a GSTIN that is not the supplier's
state's (or has a typo), the service does not start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.invoicing.__main__ import einvoice_policy
from services.invoicing.config import InvoicingSettings
from services.invoicing.domain.einvoice_checks import TurnoverBand

BASE = {"database_url": "postgresql://unused/billing"}
COMPLETE = {
    **BASE,
    "einvoice_enabled": True,
    "supplier_gstin": "29AABCB1234C1ZA",
    "irp_client_id": "c",
    "irp_client_secret": "s",
    "irp_username": "u",
    "irp_password": "p",
    "irp_public_key_path": "/k.pem",
}


def test_off_by_default_and_the_policy_follows():
    settings = InvoicingSettings(**BASE)
    assert not settings.einvoice_enabled and not einvoice_policy(settings).enabled
    policy = einvoice_policy(InvoicingSettings(**COMPLETE, einvoice_turnover_band="below_10_crore"))
    assert policy.enabled and policy.turnover_band is TurnoverBand.BELOW_10_CRORE
    assert (policy.seller.pin, policy.seller.state_code, policy.seller.location) == (560001, "29", "Bengaluru")


def test_on_needs_the_irp_credentials():
    with pytest.raises(ValidationError, match="INVOICING_IRP_PASSWORD"):
        InvoicingSettings(**{**COMPLETE, "irp_password": ""})


@pytest.mark.parametrize("gstin", ["27AAPFU0939F1ZV", "29AABCB1234C1ZB"])
def test_on_needs_the_suppliers_own_gstin(gstin):
    with pytest.raises(ValidationError, match="INVOICING_SUPPLIER_GSTIN"):
        InvoicingSettings(**{**COMPLETE, "supplier_gstin": gstin})


@pytest.mark.parametrize("series", ["0INV", "-"])
def test_a_series_the_irp_refuses_is_refused(series):
    with pytest.raises(ValidationError):
        InvoicingSettings(**BASE, invoice_series=series)
    with pytest.raises(ValidationError):
        InvoicingSettings(**BASE, credit_note_series=series)
