from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from billing_runtime.settings import ServiceSettings
from services.notification.domain.messages import RetrySchedule
from services.notification.domain.reminders import ReminderSchedule
from services.notification.domain.webhooks import SVIX_SCHEDULE_SECONDS, WebhookSchedule

# One wait of the webhook retry schedule, in seconds.
_Wait = Annotated[float, Field(ge=0, le=7 * 86400)]
# One reminder's offset from the due date, in days (negative: before it); a year either way is plenty.
_Offset = Annotated[int, Field(ge=-365, le=365)]


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore")

    grpc_port: int = 50055
    # Where invoicing answers: the invoice PDFs, and organisations' billing emails for alert mail.
    invoicing_address: str = "127.0.0.1:50053"

    # The mail server; make run points it at its local mailbox (sandboxes/smtp).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # The From header, the domain of Message-IDs, and where reminder unsubscribe requests go (mailto).
    from_address: str = "Billing Platform <billing@billing.example>"
    message_domain: str = Field(default="billing.example", pattern=r"^[A-Za-z0-9.-]+$")
    unsubscribe_address: str = ""
    # A local mailbox's web page, only for log lines that say where to look.
    mailbox_url: str = ""

    # Templates: a directory whose <kind>.subject.j2 / .html.j2 / .txt.j2 replace the built-in ones.
    template_dir: Path | None = None
    brand_name: str = "Billing Platform"
    brand_colour: str = Field(default="#1F4E79", pattern=r"^#[0-9A-Fa-f]{6}$")
    brand_footer: str = "This is an automated message about your account."

    # Transient failures (4xx, no connection) are retried: base * factor**n, capped, then the message fails.
    retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    retry_factor: float = Field(default=2.0, ge=1, le=10)
    retry_cap_seconds: float = Field(default=3600.0, gt=0, le=86400)
    retry_max_attempts: int = Field(default=10, ge=1, le=100)
    # A message claimed for sending and not finished within this long is marked UNKNOWN (its sender died).
    send_lease_seconds: float = Field(default=120.0, ge=10, le=3600)
    worker_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    consumer_durable_prefix: str = "notification"
    # Where the consumers start the first time they are created: "new" (events published from then on), so that
    # adding notification to a platform with history does not email every invoice the streams still hold; "all"
    # replays the streams.
    consumer_start_from: Literal["new", "all"] = "new"

    # Webhooks. The waits after each failed attempt (seconds, a JSON list): one attempt more than waits, then the
    # delivery fails and the endpoint is disabled. The default is Svix's: about a day in all.
    webhooks_retry_schedule_seconds: list[_Wait] = Field(default=list(SVIX_SCHEDULE_SECONDS), max_length=20)
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Off in production: endpoints may not resolve to private, loopback, link-local, multicast or reserved
    # addresses (the platform would otherwise post into its own network). make run allows them for its local
    # demo receiver.
    webhooks_allow_private_addresses: bool = False
    # How long a rotated secret keeps signing alongside the new one, unless the rotation says otherwise.
    webhooks_rotation_overlap_seconds: float = Field(default=86400.0, ge=0, le=7 * 86400)
    # A delivery claimed and not finished within this long is due again (its sender died). Above the timeout.
    webhooks_lease_seconds: float = Field(default=120.0, ge=15, le=3600)

    # Reminders about invoices' due dates (a JSON list of days; negative: before it). Three days before by default:
    # payments' dunning already mails once the date has passed; an operator may add more, such as [-7, -1, 3].
    # An empty list sends none.
    reminder_offsets_days: list[_Offset] = Field(default=[-3], max_length=20)
    # Each reminder is due at the start of its day in this zone, the supplier's, whose day the due date is.
    reminder_time_zone: str = "Asia/Kolkata"

    @field_validator("reminder_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (such as Asia/Kolkata)") from None
        return value

    def reminder_schedule(self) -> ReminderSchedule:
        return ReminderSchedule(tuple(self.reminder_offsets_days), ZoneInfo(self.reminder_time_zone))

    def retry_schedule(self) -> RetrySchedule:
        return RetrySchedule(timedelta(seconds=self.retry_base_seconds), self.retry_factor,
                             timedelta(seconds=self.retry_cap_seconds), self.retry_max_attempts)

    def webhook_schedule(self) -> WebhookSchedule:
        return WebhookSchedule(tuple(timedelta(seconds=s) for s in self.webhooks_retry_schedule_seconds))
