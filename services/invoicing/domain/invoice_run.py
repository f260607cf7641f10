"""Invoice runs' counts: what closing a batch of organisations' periods did to each of them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunProgress:
    """What one batch of a run did, added to the run's counts."""

    organisations_done: int = 0
    invoiced: int = 0
    already_invoiced: int = 0
    not_due: int = 0
    no_subscription: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, organisation_id: str, message: str) -> None:
        self.failed += 1
        self.failures.append({"organisation_id": organisation_id, "message": message})
