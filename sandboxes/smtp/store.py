"""Every accepted message, in arrival order, in memory and optionally in a directory that survives a restart.

On disk: `messages/<id>.eml` (the bytes as received) and `index.json` (envelope and arrival time of each, in
order). Both are written atomically (temp file + rename) and the .eml before the index, so a crash leaves at worst
an .eml the index does not name, never an index naming a half-written file. The writes are small and local, so
they run in the event loop: a mailbox for one developer does not need a thread pool.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from sandboxes.smtp.message import ReceivedMessage

log = logging.getLogger("sandboxes.smtp")
INDEX = "index.json"


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_id(received_at: dt.datetime) -> str:
    """Sortable by arrival to a person's eye, unique without a counter that would have to survive restarts."""
    return f"{received_at:%Y%m%d-%H%M%S}-{secrets.token_hex(4)}"


class MessageStore:
    def __init__(self, directory: Path | None = None, max_messages: int = 1000) -> None:
        self.directory = directory
        self.max_messages = max_messages
        self._messages: dict[str, ReceivedMessage] = {}
        # Replaced on every change: a waiter holds the event of the state it saw and wakes when that state is gone.
        self._changed = asyncio.Event()
        if directory is not None:
            self._load(directory)

    def _eml(self, message_id: str) -> Path:
        assert self.directory is not None
        return self.directory / "messages" / f"{message_id}.eml"

    def _load(self, directory: Path) -> None:
        index = directory / INDEX
        if not index.exists():
            return
        for entry in json.loads(index.read_text()):
            try:
                raw = self._eml(entry["id"]).read_bytes()
            except FileNotFoundError:
                log.warning("mailbox: %s is in the index but its .eml is gone; skipped", entry["id"])
                continue
            self._messages[entry["id"]] = ReceivedMessage(
                id=entry["id"], received_at=dt.datetime.fromisoformat(entry["received_at"]),
                mail_from=entry["mail_from"], rcpt_tos=list(entry["rcpt_tos"]), raw=raw, peer=entry.get("peer"),
                authenticated_as=entry.get("authenticated_as"),
            )

    def _save_index(self) -> None:
        if self.directory is None:
            return
        entries = [{"id": m.id, "received_at": m.received_at.isoformat(), "mail_from": m.mail_from,
                    "rcpt_tos": m.rcpt_tos, "peer": m.peer, "authenticated_as": m.authenticated_as, "size": len(m.raw)}
                   for m in self._messages.values()]
        write_atomically(self.directory / INDEX, json.dumps(entries, indent=1).encode())

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def add(self, mail_from: str, rcpt_tos: list[str], raw: bytes, *, peer: str | None = None,
            authenticated_as: str | None = None) -> ReceivedMessage:
        received_at = dt.datetime.now(dt.UTC)
        message = ReceivedMessage(id=new_id(received_at), received_at=received_at, mail_from=mail_from,
                                  rcpt_tos=list(rcpt_tos), raw=raw, peer=peer, authenticated_as=authenticated_as)
        if self.directory is not None:
            write_atomically(self._eml(message.id), raw)
        self._messages[message.id] = message
        dropped = list(self._messages)[: max(0, len(self._messages) - self.max_messages)]
        for old in dropped:
            del self._messages[old]
        self._save_index()
        for old in dropped:  # after the index stops naming them
            if self.directory is not None:
                self._eml(old).unlink(missing_ok=True)
        self._notify()
        return message

    def all(self) -> list[ReceivedMessage]:
        """In arrival order, oldest first."""
        return list(self._messages.values())

    def get(self, message_id: str) -> ReceivedMessage | None:
        return self._messages.get(message_id)

    def clear(self) -> int:
        gone = list(self._messages)
        self._messages.clear()
        self._save_index()
        for message_id in gone:
            if self.directory is not None:
                self._eml(message_id).unlink(missing_ok=True)
        self._notify()
        return len(gone)

    async def wait_for(
        self, match: int | Callable[[ReceivedMessage], bool] = 1, timeout: float = 5.0, *, count: int | None = None
    ) -> list[ReceivedMessage]:
        """Wait until `count` messages match and return the matching ones, oldest first.

        `match` is a count (every message matches) or a predicate on one message (then `count` defaults to 1).
        Raises TimeoutError naming what did arrive, so a failing test says why.
        """
        predicate = match if callable(match) else (lambda _message: True)
        wanted = count if count is not None else (match if isinstance(match, int) else 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = [message for message in self._messages.values() if predicate(message)]
            if len(found) >= wanted:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                arrived = [(m.subject, m.rcpt_tos) for m in self._messages.values()]
                raise TimeoutError(f"{len(found)} of {wanted} expected messages after {timeout}s; arrived: {arrived}")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
