"""The REST shapes of payments: an invoice's collection (order, payments, refunds), offline payments, refunds,
Razorpay Checkout and the provider webhook log.

Amounts are exact integers of the currency's minor units (``amount_minor``: paise, yen, fils) with the same
amount as decimal text next to them (``amount``: ``"1180.00"``). A client may send either; ``amount`` is
converted on its digits with the currency's exponent (INR 2, JPY 0, KWD 3), never through a float, and more
decimals than the currency has are refused rather than rounded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field, StrictInt, WithJsonSchema

from billing.payments.v1 import events_pb2, payments_pb2
from billing_runtime.errors import InvalidArgument
from billing_runtime.timestamps import from_timestamp
from services.gateway.entrypoints.http.money_text import MAX_MINOR, amount_fields, minor_to_text, text_to_minor
from services.gateway.entrypoints.http.proto_enums import EnumNames
from services.gateway.entrypoints.http.schemas import Request

PAYMENT_STATUSES = EnumNames.of(payments_pb2.PaymentStatus, "PAYMENT_STATUS_")
REFUND_STATUSES = EnumNames.of(payments_pb2.RefundStatus, "REFUND_STATUS_")
ORDER_STATUSES = EnumNames.of(payments_pb2.OrderStatus, "ORDER_STATUS_")
PROVIDERS = EnumNames.of(events_pb2.Provider, "PROVIDER_")

PaymentStatusName = Literal["created", "authorized", "captured", "failed"]
RefundStatusName = Literal["requested", "pending", "processed", "failed"]
OrderStatusName = Literal["pending", "created", "paid", "failed", "not_needed", "cancelled"]
ProviderName = Literal["razorpay", "stripe", "offline", "none"]


def _amount_text(value: Any) -> Any:
    """Only a JSON string: a number in a money field has usually been a binary float somewhere on its way (in
    the client's language if not in ours), and 0.1 + 0.2 must not become a payment of 0.30000000000000004."""
    if value is None or isinstance(value, str):
        return value
    raise ValueError('must be decimal text such as "1000.00" (a string), or send amount_minor as an integer')


AmountText = Annotated[
    str | None, BeforeValidator(_amount_text),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?$", "examples": ["1000.00"],
                    "description": "The amount as decimal text in the currency's units, at most as many decimals "
                                   "as the currency has (INR 2, JPY 0, KWD 3)"}, mode="validation"),
]
# StrictInt: a JSON 1000.0 or "1000" is refused, so nothing reaches the services through a float or a guess.
MinorAmount = Annotated[StrictInt, Field(le=MAX_MINOR)]


class ProviderError(BaseModel):
    """What the provider said when a call failed: its HTTP status and Razorpay's error body."""

    http_status: int
    code: str = Field(examples=["BAD_REQUEST_ERROR"])
    description: str
    field: str
    reason: str
    source: str
    step: str

    @classmethod
    def from_pb(cls, message: payments_pb2.ProviderError) -> ProviderError | None:
        if message.ByteSize() == 0:
            return None
        return cls(http_status=message.http_status, code=message.code, description=message.description,
                   field=message.field, reason=message.reason, source=message.source, step=message.step)


class Order(BaseModel):
    """The provider order an invoice is paid through."""

    invoice_id: str
    organisation_id: str
    invoice_number: str
    status: OrderStatusName | None
    status_reason: str = Field(description="Why the order is not_needed or failed")
    provider: ProviderName | None = Field(default=None, description="razorpay or stripe")
    provider_order_id: str = Field(description="Razorpay's order_... id, or Stripe's PaymentIntent pi_...; empty "
                                               "until created")
    currency: str
    amount_minor: int = Field(examples=[118000])
    amount: str | None = Field(examples=["1180.00"])
    error: ProviderError | None = Field(description="The provider's refusal, when it refused to create the order")
    create_attempts: int
    created_at: datetime | None

    @classmethod
    def from_pb(cls, message: payments_pb2.Order) -> Order:
        return cls(
            invoice_id=message.invoice_id, organisation_id=message.organisation_id,
            invoice_number=message.invoice_number, status=ORDER_STATUSES.name(message.status),
            status_reason=message.status_reason, provider=PROVIDERS.name(message.provider),
            provider_order_id=message.provider_order_id,
            currency=message.currency, **amount_fields(message.amount_minor, message.currency),
            error=ProviderError.from_pb(message.error), create_attempts=message.create_attempts,
            created_at=from_timestamp(message.create_time),
        )


class Payment(BaseModel):
    id: str
    invoice_id: str
    organisation_id: str
    provider: ProviderName | None
    provider_payment_id: str = Field(description="Razorpay's pay_... id, Stripe's PaymentIntent pi_..., or the "
                                                 "reference of an offline payment")
    provider_order_id: str
    status: PaymentStatusName | None
    currency: str
    amount_minor: int = Field(examples=[118000])
    amount: str | None = Field(examples=["1180.00"])
    amount_refunded_minor: int = Field(description="Refunds not refused by the provider")
    amount_refunded: str | None
    method: str = Field(examples=["upi", "card", "bank_transfer"])
    email: str
    contact: str
    error_code: str = Field(description="The provider's error, only while the payment is failed: one authorized "
                                        "or captured after a decline carries none (the decline is in the "
                                        "webhook log)", examples=["card_declined"])
    error_description: str
    error_reason: str
    reference: str = Field(description="Offline payments: the bank's UTR, the cheque number ...")
    note: str
    created_at: datetime | None
    authorized_at: datetime | None
    captured_at: datetime | None
    failed_at: datetime | None = Field(description="When it failed; null once it went through after all")

    @classmethod
    def fields_of(cls, message: payments_pb2.Payment) -> dict[str, Any]:
        currency = message.currency
        return dict(
            id=message.id, invoice_id=message.invoice_id, organisation_id=message.organisation_id,
            provider=PROVIDERS.name(message.provider), provider_payment_id=message.provider_payment_id,
            provider_order_id=message.provider_order_id, status=PAYMENT_STATUSES.name(message.status),
            currency=currency, **amount_fields(message.amount_minor, currency),
            amount_refunded_minor=message.amount_refunded_minor,
            amount_refunded=minor_to_text(message.amount_refunded_minor, currency), method=message.method,
            email=message.email, contact=message.contact, error_code=message.error_code,
            error_description=message.error_description, error_reason=message.error_reason,
            reference=message.reference, note=message.note, created_at=from_timestamp(message.create_time),
            authorized_at=from_timestamp(message.authorize_time), captured_at=from_timestamp(message.capture_time),
            failed_at=from_timestamp(message.failure_time),
        )

    @classmethod
    def from_pb(cls, message: payments_pb2.Payment) -> Payment:
        return cls(**cls.fields_of(message))


class Refund(BaseModel):
    id: str
    payment_id: str
    invoice_id: str
    organisation_id: str
    provider_refund_id: str = Field(description="Razorpay's rfnd_... id or Stripe's re_...; empty until the "
                                                "provider accepted it")
    status: RefundStatusName | None
    currency: str
    amount_minor: int = Field(examples=[50000])
    amount: str | None = Field(examples=["500.00"])
    reason: str
    idempotency_key: str
    error: ProviderError | None
    created_at: datetime | None
    processed_at: datetime | None

    @classmethod
    def from_pb(cls, message: payments_pb2.Refund) -> Refund:
        return cls(
            id=message.id, payment_id=message.payment_id, invoice_id=message.invoice_id,
            organisation_id=message.organisation_id, provider_refund_id=message.provider_refund_id,
            status=REFUND_STATUSES.name(message.status), currency=message.currency,
            **amount_fields(message.amount_minor, message.currency), reason=message.reason,
            idempotency_key=message.idempotency_key, error=ProviderError.from_pb(message.error),
            created_at=from_timestamp(message.create_time), processed_at=from_timestamp(message.process_time),
        )


class PaymentWithRefunds(Payment):
    refunds: list[Refund]

    @classmethod
    def from_reply(cls, reply: payments_pb2.GetPaymentResponse) -> PaymentWithRefunds:
        return cls(**Payment.fields_of(reply.payment), refunds=[Refund.from_pb(r) for r in reply.refunds])


class PaymentLink(BaseModel):
    id: str
    invoice_id: str
    provider_link_id: str
    short_url: str
    status: str
    currency: str
    amount_minor: int
    amount: str | None
    created_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def from_pb(cls, message: payments_pb2.PaymentLink) -> PaymentLink:
        return cls(id=message.id, invoice_id=message.invoice_id, provider_link_id=message.provider_link_id,
                   short_url=message.short_url, status=message.status, currency=message.currency,
                   **amount_fields(message.amount_minor, message.currency),
                   created_at=from_timestamp(message.create_time), expires_at=from_timestamp(message.expire_time))


class InvoicePayments(BaseModel):
    """Payments' view of one invoice: how it is being collected, what has been received, refunded and credited,
    and what is still being collected."""

    invoice_id: str
    order: Order | None = Field(description="None until payments made (or decided against) a provider order")
    payments: list[Payment]
    refunds: list[Refund]
    payment_links: list[PaymentLink]
    currency: str
    total_minor: int = Field(examples=[118000])
    total: str | None = Field(examples=["1180.00"])
    amount_captured_minor: int = Field(description="Captured so far, online and offline")
    amount_captured: str | None
    amount_refunded_minor: int = Field(description="Refunded so far (refunds not refused by the provider)")
    amount_refunded: str | None
    amount_credited_minor: int = Field(description="What credit notes took off what the invoice owes (as payments "
                                                   "has counted them)", examples=[41417])
    amount_credited: str | None = Field(examples=["414.17"])
    amount_due_minor: int = Field(description="What payments is collecting now: the total less credit notes and "
                                              "captures; 0 once the invoice is settled or void. Read this rather "
                                              "than working it out from the amounts above", examples=[76465])
    amount_due: str | None = Field(examples=["764.65"])
    due_date: str = Field(description="YYYY-MM-DD; empty when the invoice has none", examples=["2026-11-15"])

    @classmethod
    def from_pb(cls, invoice_id: str, reply: payments_pb2.GetInvoicePaymentsResponse) -> InvoicePayments:
        currency = reply.currency
        return cls(
            invoice_id=invoice_id, order=Order.from_pb(reply.order) if reply.HasField("order") else None,
            payments=[Payment.from_pb(p) for p in reply.payments], refunds=[Refund.from_pb(r) for r in reply.refunds],
            payment_links=[PaymentLink.from_pb(link) for link in reply.payment_links], currency=currency,
            total_minor=reply.total_minor, total=minor_to_text(reply.total_minor, currency),
            amount_captured_minor=reply.amount_captured_minor,
            amount_captured=minor_to_text(reply.amount_captured_minor, currency),
            amount_refunded_minor=reply.amount_refunded_minor,
            amount_refunded=minor_to_text(reply.amount_refunded_minor, currency),
            amount_credited_minor=reply.amount_credited_minor,
            amount_credited=minor_to_text(reply.amount_credited_minor, currency),
            amount_due_minor=reply.amount_due_minor, amount_due=minor_to_text(reply.amount_due_minor, currency),
            due_date=reply.due_date,
        )


class Prefill(BaseModel):
    name: str
    email: str
    contact: str


class Checkout(BaseModel):
    """What the provider's checkout needs. Razorpay Checkout's options (``key``, ``order_id``, ``amount``,
    ``currency``, ``name``, ``description``, ``prefill``) and a hosted page to pay without your own; or, for
    Stripe, the publishable key, the PaymentIntent and its client secret for Stripe.js's ``confirmPayment``."""

    provider: ProviderName | None = Field(description="razorpay or stripe")
    key_id: str = Field(description="The public key id for Checkout's `key` option, or Stripe's publishable key "
                                    "(never a secret key)", examples=["rzp_test_1DP5mmOlF5G5ag"])
    order_id: str = Field(description="Razorpay's order, or Stripe's PaymentIntent",
                          examples=["order_EKwxwAgItmmXdp"])
    client_secret: str = Field(default="", description="Stripe: the PaymentIntent's client secret for Stripe.js "
                                                       "(for the payer's browser only); empty for Razorpay")
    amount_minor: int = Field(description="Checkout's `amount` option, in minor units", examples=[118000])
    amount: str | None = Field(examples=["1180.00"])
    currency: str = Field(examples=["INR"])
    name: str = Field(description="The merchant name Checkout shows")
    description: str
    prefill: Prefill
    invoice_id: str
    invoice_number: str
    checkout_url: str = Field(description="The provider's hosted checkout for this order; empty if none")

    @classmethod
    def from_pb(cls, message: payments_pb2.Checkout) -> Checkout:
        return cls(
            provider=PROVIDERS.name(message.provider), client_secret=message.client_secret,
            key_id=message.key_id, order_id=message.order_id, **amount_fields(message.amount_minor, message.currency),
            currency=message.currency, name=message.name, description=message.description,
            prefill=Prefill(name=message.prefill_name, email=message.prefill_email, contact=message.prefill_contact),
            invoice_id=message.invoice_id, invoice_number=message.invoice_number, checkout_url=message.checkout_url,
        )


class CheckoutVerify(Request):
    """Exactly what Checkout's `handler` receives after a payment, passed on as it is."""

    razorpay_order_id: str = Field(examples=["order_EKwxwAgItmmXdp"])
    razorpay_payment_id: str = Field(examples=["pay_29QQoUBi66xm2f"])
    razorpay_signature: str = Field(examples=["9ef4dffbfd84f1318f6739a3ce19f9d85851857ae648f114332d8401e0949a3d"])


class WebhookEvent(BaseModel):
    event_id: str = Field(description="The provider's event id (X-Razorpay-Event-Id, or Stripe's evt_...)")
    provider: ProviderName | None
    event_type: str = Field(examples=["payment.captured"])
    received_at: datetime | None
    processed_at: datetime | None
    outcome: str = Field(examples=["applied", "duplicate state", "unmatched: no such order"])

    @classmethod
    def from_pb(cls, message: payments_pb2.WebhookEvent) -> WebhookEvent:
        return cls(event_id=message.event_id, provider=PROVIDERS.name(message.provider),
                   event_type=message.event_type, received_at=from_timestamp(message.receive_time),
                   processed_at=from_timestamp(message.process_time), outcome=message.outcome)


def minor_amount(amount_minor: int | None, amount: str | None, currency: str) -> int | None:
    """The amount in minor units from whichever of ``amount_minor`` / ``amount`` the client sent (None if
    neither); both is refused, since two amounts that disagree would leave us guessing."""
    if amount_minor is not None and amount is not None:
        raise InvalidArgument("send amount_minor or amount, not both", field="amount")
    if amount is None:
        return amount_minor
    try:
        minor = text_to_minor(amount, currency)
    except ValueError as error:
        raise InvalidArgument(str(error), field="amount") from None
    if minor == 0:  # a refund of amount_minor 0 means "everything left": "0.00" must not say that by accident
        raise InvalidArgument("must be more than zero", field="amount")
    return minor


class OfflinePaymentCreate(Request):
    amount_minor: MinorAmount | None = Field(None, gt=0, description="In minor units (paise); or send amount",
                                             examples=[100000])
    amount: AmountText = None
    currency: str = Field(description="ISO 4217 code", examples=["INR"])
    method: Literal["bank_transfer", "cheque", "cash"]
    reference: str = Field(description="The bank's UTR, the cheque number ...: unique per invoice; the same "
                                       "reference again returns the payment recorded first",
                           examples=["UTR0000123456"])
    note: str = Field("", examples=["Paid by NEFT from HDFC"])
    received_at: AwareDatetime | None = Field(None, description="RFC 3339 with a zone; default now",
                                              examples=["2026-11-05T10:30:00+05:30"])


class RefundCreate(Request):
    amount_minor: MinorAmount | None = Field(None, ge=0, description="In minor units; 0 or absent refunds "
                                                                     "everything not yet refunded",
                                             examples=[50000])
    amount: AmountText = None
    reason: str = Field(description="Why the money goes back; kept on the refund",
                        examples=["Duplicate payment"])
