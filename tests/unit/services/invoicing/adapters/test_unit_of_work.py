"""The unit of work hands out repositories only inside its transaction."""

from __future__ import annotations

import pytest

from billing_runtime.database import create_engine
from services.invoicing.adapters.unit_of_work import InvoicingUnitOfWork


async def test_repositories_are_refused_outside_the_block():
    # The engine connects lazily: nothing here touches a database.
    engine = create_engine("postgresql://nobody@127.0.0.1:1/none", application_name="test")
    try:
        uow = InvoicingUnitOfWork(engine)
        for name in ("organisations", "catalog", "subscriptions", "invoices", "exchange_rates", "invoice_runs",
                     "entitlement_overrides", "plans_in_force"):
            with pytest.raises(RuntimeError, match="outside its 'async with' block"):
                getattr(uow, name)
    finally:
        await engine.dispose()
