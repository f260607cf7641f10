"""One sandbox's state: its settings, objects, ledger, payment links, webhook dispatcher and armed faults."""

from __future__ import annotations

from dataclasses import dataclass

from sandboxes.razorpay.faults import FaultInjector
from sandboxes.razorpay.ids import reset_clock
from sandboxes.razorpay.ledger import Ledger
from sandboxes.razorpay.links import PaymentLinks
from sandboxes.razorpay.recurring import Recurring
from sandboxes.razorpay.settings import SandboxSettings
from sandboxes.razorpay.store import Store
from sandboxes.razorpay.webhooks import WebhookDispatcher


@dataclass
class Sandbox:
    settings: SandboxSettings
    store: Store
    webhooks: WebhookDispatcher
    ledger: Ledger
    links: PaymentLinks
    faults: FaultInjector
    recurring: Recurring
    base_url: str = ""

    @classmethod
    def from_settings(cls, settings: SandboxSettings) -> Sandbox:
        store = Store.open(settings.state_file)
        webhooks = WebhookDispatcher(
            account_id=settings.account_id,
            secret=settings.webhook_secret,
            url=settings.webhook_url,
            retry_initial_seconds=settings.webhook_retry_initial_seconds,
            retry_max_seconds=settings.webhook_retry_max_seconds,
            max_attempts=settings.webhook_max_attempts,
            timeout_seconds=settings.webhook_timeout_seconds,
        )
        ledger = Ledger(store, webhooks, refund_settle_seconds=settings.refund_settle_seconds)
        recurring = Recurring(store, webhooks, settings.key_secret, capture=ledger._capture, fail=ledger._fail)
        ledger.on_authorised = recurring.authorised
        return cls(settings, store, webhooks, ledger, PaymentLinks(ledger), FaultInjector(), recurring)

    def bind(self, url: str) -> None:
        """Learn the URL the server listens on; links' short_url point at it (or at public_url)."""
        self.base_url = (self.settings.public_url or url).rstrip("/")
        self.links.base_url = self.base_url

    def reset(self) -> None:
        """Forget every object, event, delivery and armed fault (settings and webhook URL stay)."""
        self.ledger.stop()
        self.recurring.stop()
        self.recurring.fail_next_debits = self.recurring.fail_next_notifications = 0
        reset_clock()
        self.store.reset()
        self.webhooks.reset()
        self.faults.clear()
        self.ledger.fail_next_refunds = 0
        self.ledger.fail_refund_ids.clear()
        self.ledger.refund_settlement = "auto"
