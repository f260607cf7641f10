"""Armed faults: the next N transactions answer a chosen reply at MAIL, RCPT or DATA, hang, or lose the connection.

A fault counts transactions, not commands: refusing two recipients of one message uses one of its `times`, so
"fail twice, then accept" means two attempts of the sender, however many recipients each has.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import asdict, dataclass, field
from itertools import count
from typing import Any, Literal

from aiosmtpd.smtp import Envelope

Stage = Literal["MAIL", "RCPT", "DATA"]
REPLY = re.compile(r"^[45][0-9]{2}( [ -~]*)?$")
_ids = count(1)


@dataclass
class Fault:
    stage: Stage = "RCPT"
    reply: str | None = None
    times: int = 1
    recipient: str | None = None
    hang_seconds: float = 0.0
    disconnect: bool = False
    id: int = field(default_factory=lambda: next(_ids))

    def __post_init__(self) -> None:
        if self.reply is not None and not REPLY.match(self.reply):
            raise ValueError(f"reply {self.reply!r} is not an SMTP error reply like '451 4.3.0 try again later'")
        if self.reply is None and not self.disconnect and self.hang_seconds <= 0:
            raise ValueError("a fault needs a reply, a hang (hang_seconds > 0), or disconnect")
        if self.reply is not None and self.disconnect:
            raise ValueError("a fault either replies or disconnects, not both")
        if self.recipient is not None and self.stage == "MAIL":
            raise ValueError("recipients are not known yet at MAIL: use stage RCPT or DATA for a recipient's fault")
        if self.times < 1 or self.hang_seconds < 0:
            raise ValueError("times must be at least 1 and hang_seconds not negative")

    @property
    def closes_connection(self) -> bool:
        """421 means "closing the channel" (RFC 5321 4.2.2), so the mailbox closes it as a real server would."""
        return self.disconnect or (self.reply is not None and self.reply.startswith("421"))

    def concerns(self, recipients: list[str]) -> bool:
        return self.recipient is None or self.recipient.lower() in (address.lower() for address in recipients)

    def view(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    def __init__(self) -> None:
        self._armed: list[Fault] = []
        # The faults each open transaction has met, so its other recipients meet the same one without using up
        # another of its `times`. Weak: an envelope is dropped by aiosmtpd when its transaction ends.
        self._met: weakref.WeakKeyDictionary[Envelope, list[Fault]] = weakref.WeakKeyDictionary()

    def arm(self, fault: Fault) -> Fault:
        self._armed.append(fault)
        return fault

    def armed(self) -> list[Fault]:
        return list(self._armed)

    def clear(self) -> None:
        self._armed.clear()
        self._met.clear()

    def take(self, stage: Stage, envelope: Envelope, recipients: list[str]) -> Fault | None:
        """The fault this command meets, if any; the first armed one that matches uses up one of its `times`."""
        met = self._met.setdefault(envelope, [])
        for fault in met:
            if fault.stage == stage and fault.concerns(recipients):
                return fault
        for fault in self._armed:
            if fault.stage == stage and fault.concerns(recipients):
                fault.times -= 1
                if fault.times == 0:
                    self._armed.remove(fault)
                met.append(fault)
                return fault
        return None
