"""The sandbox's objects, kept as Razorpay-shaped dicts, optionally persisted as one JSON file.

Objects are stored as the bodies the API answers with; keys starting with `_` are the sandbox's own bookkeeping
(the card object that only webhooks carry, the payment link a payment belongs to) and never leave through the REST
API. Money is integers in minor units throughout.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandboxes.razorpay.errors import bad_request, not_found

Obj = dict[str, Any]
KINDS = ("orders", "payments", "refunds", "payment_links", "customers", "tokens")
MAX_COUNT = 100
DEFAULT_COUNT = 10


def public(obj: Obj) -> Obj:
    """The body Razorpay would answer: bookkeeping keys dropped, empty notes as `[]` (a PHP quirk Razorpay keeps)."""
    body = {key: value for key, value in obj.items() if not key.startswith("_")}
    if "notes" in body and not body["notes"]:
        body["notes"] = []
    return body


@dataclass
class Store:
    """Every object the sandbox knows, by kind and id, in creation order."""

    path: Path | None = None
    orders: dict[str, Obj] = field(default_factory=dict)
    payments: dict[str, Obj] = field(default_factory=dict)
    refunds: dict[str, Obj] = field(default_factory=dict)
    payment_links: dict[str, Obj] = field(default_factory=dict)
    customers: dict[str, Obj] = field(default_factory=dict)
    # Recurring tokens (mandates), by token id; each names its customer in `customer_id`.
    tokens: dict[str, Obj] = field(default_factory=dict)
    # X-Refund-Idempotency key -> refund id: the same key answers the same refund.
    refund_keys: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path | None) -> Store:
        """Load the state file if there is one, else start empty."""
        store = cls(path=path)
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            for kind in KINDS:
                getattr(store, kind).update(data.get(kind, {}))
            store.refund_keys.update(data.get("refund_keys", {}))
        return store

    def save(self) -> None:
        """Write the whole state atomically (temp file + rename), so a crash never leaves half a file."""
        if self.path is None:
            return
        data = {kind: getattr(self, kind) for kind in KINDS}
        data["refund_keys"] = self.refund_keys
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def reset(self) -> None:
        for kind in KINDS:
            getattr(self, kind).clear()
        self.refund_keys.clear()
        self.save()

    def get(self, kind: str, object_id: str) -> Obj:
        """The object, or Razorpay's 400 "The id provided does not exist"."""
        found = getattr(self, kind).get(object_id)
        if found is None:
            raise not_found()
        return found


def _int_param(query: dict[str, str], name: str, default: int | None) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise bad_request(f"The {name} must be an integer.", name) from None


def select(objects: list[Obj], query: dict[str, str], filters: dict[str, Any] | None = None) -> list[Obj]:
    """Razorpay's list semantics: `from`/`to` (unix seconds, inclusive), `count` (default 10, max 100), `skip`,
    newest first. `filters` keeps objects whose key equals the value."""
    start = _int_param(query, "from", None)
    end = _int_param(query, "to", None)
    count = _int_param(query, "count", DEFAULT_COUNT)
    skip = _int_param(query, "skip", 0)
    assert count is not None and skip is not None
    if count < 1:
        raise bad_request("The count must be at least 1.", "count")
    if count > MAX_COUNT:
        raise bad_request(f"The count may not be greater than {MAX_COUNT}.", "count")
    if skip < 0:
        raise bad_request("The skip must be at least 0.", "skip")
    chosen = [
        obj
        for obj in objects
        if (start is None or obj["created_at"] >= start)
        and (end is None or obj["created_at"] <= end)
        and all(obj.get(key) == value for key, value in (filters or {}).items())
    ]
    # Newest first; objects created within the same second keep their reverse creation order.
    chosen.reverse()
    chosen.sort(key=lambda obj: obj["created_at"], reverse=True)
    return chosen[skip : skip + count]


def collection(items: list[Obj]) -> Obj:
    bodies = [public(item) for item in items]
    return {"entity": "collection", "count": len(bodies), "items": bodies}
