"""The unit of work hands out repositories only inside its transaction."""

from __future__ import annotations

import pytest

from billing_runtime.database import create_engine
from services.ingest.adapters.unit_of_work import IngestUnitOfWork


async def test_repositories_are_refused_outside_the_block():
    # The engine connects lazily: nothing here touches a database.
    engine = create_engine("postgresql://nobody@127.0.0.1:1/none", application_name="test")
    try:
        uow = IngestUnitOfWork(engine)
        for name in ("projects", "api_keys"):
            with pytest.raises(RuntimeError, match="outside its 'async with' block"):
                getattr(uow, name)
    finally:
        await engine.dispose()
