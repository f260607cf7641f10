"""What the SMTP server and the web page share: the settings, the kept messages and the armed faults."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandboxes.smtp.faults import FaultPlan
from sandboxes.smtp.settings import MailboxSettings
from sandboxes.smtp.store import MessageStore


@dataclass
class Mailbox:
    settings: MailboxSettings
    store: MessageStore
    faults: FaultPlan = field(default_factory=FaultPlan)
    smtp_address: str = ""  # host:port once listening, shown on the page

    @classmethod
    def from_settings(cls, settings: MailboxSettings) -> Mailbox:
        return cls(settings, MessageStore(settings.store_dir, settings.max_messages))
