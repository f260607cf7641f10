from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.invoicing.domain import gst
from services.invoicing.domain.einvoice_checks import TurnoverBand


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INVOICING_", extra="ignore")

    grpc_port: int = 50053
    # Where metering (the owner of usage) answers.
    metering_address: str = "127.0.0.1:50052"
    # Where payments answers: credit notes with outcome refund ask it for the refund (its CreateRefund).
    payments_address: str = "127.0.0.1:50054"
    # The credit notes' number series: "CN/2627/00001" (1 to 5 letters, digits or '-', as invoice series).
    # The first character is a letter or a digit 1-9: the IRP refuses document numbers starting with 0 or '-'.
    credit_note_series: str = Field(default="CN", pattern=r"^[A-Za-z1-9][A-Za-z0-9-]{0,4}$")

    # The supplier: who issues the invoices. Its GST state decides CGST+SGST (same state) or IGST.
    supplier_name: str = "Billing Platform Demo Pvt Ltd"
    supplier_address: str = "1 MG Road, Bengaluru 560001, Karnataka"
    supplier_email: str = "accounts@billing.example"
    supplier_state_code: str = "29"
    supplier_gstin: str = ""
    # Issue dates (and so the financial year of a number) are days in this zone.
    supplier_time_zone: str = "Asia/Kolkata"
    # Invoice numbers: "<series>/<financial year>/<sequence>", at most 16 characters in all.
    invoice_series: str = Field(default="INV", min_length=1, max_length=4, pattern=r"^[A-Z1-9][A-Z0-9]*$")
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

    # GST e-invoicing (docs/india.md): registering B2B and export invoices with the IRP for their IRN and signed QR.
    # Off unless the supplier's aggregate turnover is above the threshold (₹5 crore today).
    einvoice_enabled: bool = False
    # NIC's API (or a GSP's, or the local sandbox: make run points this at sandboxes/irp).
    irp_base_url: str = "https://einv-apisandbox.nic.in"
    irp_client_id: str = ""
    irp_client_secret: str = ""
    irp_username: str = ""
    irp_password: str = ""
    # NIC's public key the AppKey is encrypted to (PEM), and the key its signed invoices and QR codes verify with.
    irp_public_key_path: Path | None = None
    irp_signing_public_key_path: Path | None = None
    # From ₹10 crore the IRP refuses documents older than 30 days; below it there is no such limit.
    einvoice_turnover_band: TurnoverBand = TurnoverBand.FROM_10_CRORE
    # The seller's address as INV-01 wants it (line, city, 6-digit PIN).
    einvoice_seller_address1: str = "1 MG Road"
    einvoice_seller_location: str = "Bengaluru"
    einvoice_seller_pin: int = Field(default=560001, ge=100000, le=999999)
    # How often the registrar looks for due registrations; an outage backs off per document (30 s doubling to 1 h).
    einvoice_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    einvoice_retry_initial_seconds: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _einvoicing_complete(self) -> InvoicingSettings:
        if self.einvoice_enabled:
            missing = [
                name
                for name in (
                    "supplier_gstin",
                    "irp_client_id",
                    "irp_client_secret",
                    "irp_username",
                    "irp_password",
                    "irp_public_key_path",
                )
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(f"einvoice_enabled needs {', '.join('INVOICING_' + m.upper() for m in missing)}")
            problem = gst.gstin_problem(self.supplier_gstin, self.supplier_state_code)
            if problem:
                raise ValueError(f"INVOICING_SUPPLIER_GSTIN {problem}")
        return self

    @field_validator("supplier_state_code")
    @classmethod
    def _known_state(cls, value: str) -> str:
        if value not in gst.STATE_CODES:
            raise ValueError(f"{value!r} is not a GST state code")
        return value
