from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.invoicing.domain import gst


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore")

    grpc_port: int = 50053
    # Where metering (the owner of usage) answers.
    metering_address: str = "127.0.0.1:50052"
    # Where payments answers: credit notes with outcome refund ask it for the refund (its CreateRefund).
    payments_address: str = "127.0.0.1:50054"
    # The credit notes' number series: "CN/2627/00001" (1 to 5 letters, digits or '-', as invoice series).
    credit_note_series: str = Field(default="CN", pattern=r"^[A-Za-z0-9-]{1,5}$")

    # The supplier: who issues the invoices. Its GST state decides CGST+SGST (same state) or IGST.
    supplier_name: str = "Billing Platform Demo Pvt Ltd"
    supplier_address: str = "1 MG Road, Bengaluru 560001, Karnataka"
    supplier_email: str = "accounts@billing.example"
    supplier_state_code: str = "29"
    supplier_gstin: str = ""
    # Issue dates (and so the financial year of a number) are days in this zone.
    supplier_time_zone: str = "Asia/Kolkata"
    # Invoice numbers: "<series>/<financial year>/<sequence>", at most 16 characters in all.
    invoice_series: str = Field(default="INV", min_length=1, max_length=4, pattern=r"^[A-Z0-9]+$")
    payment_terms_days: int = Field(default=15, ge=0, le=365)

    # Branding of the PDF and HTML invoice.
    brand_name: str = "Billing Platform"
    brand_logo_path: Path | None = None  # PNG or JPEG
    brand_primary_colour: str = Field(default="#1F4E79", pattern=r"^#[0-9A-Fa-f]{6}$")
    brand_accent_colour: str = Field(default="#EAF1F8", pattern=r"^#[0-9A-Fa-f]{6}$")
    brand_footer: str = "Thank you for your business. This is a computer-generated invoice."
    # A directory holding an ``invoice.html.j2`` that replaces the built-in HTML template.
    invoice_template_dir: Path | None = None

    # The scheduler closes the previous month's billing periods; it checks this often.
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = Field(default=300.0, gt=0)
    # Grace period: after a billing period ends its invoice stays a draft this long, priced again by every run
    # (the scheduler's every scheduler_interval_seconds), so events arriving late still land on it; then it is
    # issued. 0 issues at once. At most 30 days.
    grace_period_hours: int = Field(default=0, ge=0, le=720)
    # How long after a period ends its events may still arrive: ingest's accepted past window
    # (INGEST_EVENT_PAST_WINDOW_DAYS). Issued periods within it are priced again with each later invoice, and
    # their late usage is billed on it as usage adjustment lines.
    late_usage_window_days: int = Field(default=35, ge=1, le=400)
    # Organisations priced per batch of an invoice run (one usage call to metering and two transactions each).
    invoice_run_batch_size: int = Field(default=200, ge=1, le=5_000)
    # The usage forecast's recent window: the last this many complete days set the trend (with the period-to-date
    # average). A week covers every weekday once, so a weekly rhythm does not tilt it; at most a month.
    forecast_window_days: int = Field(default=7, ge=1, le=31)

    # Settlement: the durable consumer of payments' events on BILLING_PAYMENTS. Every replica uses the same name,
    # so they share the work.
    payments_consumer_durable: str = Field(default="invoicing-settlement", pattern=r"^[A-Za-z0-9_-]+$")
    # A message not acknowledged this long after delivery is delivered again (one transaction takes milliseconds).
    payments_consumer_ack_wait_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Failures other than the database being away before an event goes to the review list instead.
    payments_consumer_max_failures: int = Field(default=10, ge=1, le=1000)
    payments_consumer_fetch_batch: int = Field(default=32, ge=1, le=1000)

    @field_validator("supplier_state_code")
    @classmethod
    def _known_state(cls, value: str) -> str:
        if value not in gst.STATE_CODES:
            raise ValueError(f"{value!r} is not a GST state code")
        return value
