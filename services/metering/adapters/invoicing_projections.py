"""Metering's client of invoicing's ``GetProjectedInvoice``: the projected invoice of an organisation's current
billing period (and the forecast of its end), which cost alert rules compare with their budget; and of its
``GetCreditBalance``, which credit-balance rules compare with their threshold. Speaks only invoicing's published
contract."""

from __future__ import annotations

from billing.invoicing.v1 import invoicing_pb2, invoicing_pb2_grpc
from billing_runtime import clients
from billing_runtime.errors import FailedPrecondition
from billing_runtime.timestamps import from_timestamp
from services.metering.service.alert_ports import CreditStanding, ProjectedCost


class InvoicingProjections:
    def __init__(self, address: str) -> None:
        self._channel = clients.channel(address)
        self._stub = invoicing_pb2_grpc.InvoicingServiceStub(self._channel)

    async def projected_cost(self, organisation_id: str, *, with_forecast: bool = False) -> ProjectedCost | None:
        """None when the organisation has no subscription in its current period (invoicing answers
        FAILED_PRECONDITION: there is nothing to project). NotFound and Unavailable propagate. With
        ``with_forecast`` the forecast's total comes too (invoicing's ``include_forecast``)."""
        try:
            response = await clients.call(
                self._stub.GetProjectedInvoice,
                invoicing_pb2.GetProjectedInvoiceRequest(
                    organisation_id=organisation_id, include_forecast=with_forecast
                ),
                timeout=10.0,
            )
        except FailedPrecondition:
            return None
        invoice = response.invoice
        start, end = from_timestamp(invoice.period_start), from_timestamp(invoice.period_end)
        assert start is not None and end is not None, "a projected invoice has a period"
        forecast = response.forecast.invoice if response.HasField("forecast") else None
        return ProjectedCost(
            total_minor=invoice.total_minor, currency=invoice.currency, period_start=start, period_end=end,
            forecast_total_minor=forecast.total_minor if forecast is not None else None,
        )

    async def credit_balance(self, organisation_id: str) -> CreditStanding:
        """Invoicing's GetCreditBalance: the available balance per currency and the latest grant's time."""
        response = await clients.call(
            self._stub.GetCreditBalance, invoicing_pb2.GetCreditBalanceRequest(organisation_id=organisation_id),
            timeout=10.0,
        )
        granted = [from_timestamp(grant.create_time) for grant in response.grants]
        return CreditStanding(
            available_minor={balance.currency: balance.available_minor for balance in response.balances},
            latest_grant_at=max((at for at in granted if at is not None), default=None),
        )

    async def close(self) -> None:
        await self._channel.close()
