"""The monthly close: every ``scheduler_interval_seconds``, close the previous calendar month if it is not closed.

On the 1st the previous month's run starts; organisations whose month has not ended yet in their own zone are
counted "not due", and later checks run the month again until none is left. Runs are idempotent per
(organisation, period), so a check on several replicas at once issues nothing twice."""

from __future__ import annotations

import asyncio

from billing_runtime.logging import get_logger
from services.invoicing.service.invoice_runs import InvoiceRuns

log = get_logger(__name__)


async def run_scheduler(runs: InvoiceRuns, interval_seconds: float) -> None:
    """Check until cancelled; a failed check is logged and retried at the next interval."""
    while True:
        try:
            started = await runs.scheduled_close()
            if started is not None:
                log.info("scheduled close started", run_id=started.id, period_key=started.period_key)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the scheduler must outlive database blips
            log.warning("scheduled close check failed, will retry", error=str(error))
        await asyncio.sleep(interval_seconds)
