"""A local mail server: a real SMTP server (aiosmtpd) that keeps every message it accepts, a web page to read
them, a JSON API for tests, and fault injection (421/451/550 replies, hangs, dropped connections). It imports
nothing from services/: it stands where the mail provider stands."""

from sandboxes.smtp.control import MailboxControl, MailboxControlError
from sandboxes.smtp.message import Attachment, ReceivedMessage
from sandboxes.smtp.runner import RunningMailbox, running_mailbox
from sandboxes.smtp.settings import MailboxSettings

__all__ = ["Attachment", "MailboxControl", "MailboxControlError", "MailboxSettings", "ReceivedMessage",
           "RunningMailbox", "running_mailbox"]
