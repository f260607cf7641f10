"""A typed async client of the mailbox's JSON API, for tests and tools (in-process or against the process).

    control = MailboxControl("http://127.0.0.1:8025")
    await control.inject("451 4.3.0 try again later", times=2, stage="RCPT")
    [message] = await control.wait_for(lambda m: m["subject"] == "Invoice INV-1")

Messages are the API's JSON: `id, received_at, mail_from, rcpt_tos, subject, from, to, cc, message_id, date,
parts, attachments, has_html, has_text` (and `headers, html, text` from `message()`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

import httpx

Message = dict[str, Any]


class MailboxControlError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"mailbox API call failed with HTTP {status}: {body}")
        self.status = status
        self.body = body


class MailboxControl:
    def __init__(self, base_url: str, client: httpx.AsyncClient | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> MailboxControl:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = await self._client.request(method, f"{self.base_url}{path}", json=json, params=params)
        if response.is_error:
            raise MailboxControlError(response.status_code, response.text)
        return response.json() if response.content else None

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/api/health")

    async def messages(self, recipient: str | None = None) -> list[Message]:
        """Every kept message, oldest first; `recipient` keeps those whose envelope names it."""
        return await self._call("GET", "/api/messages", params={"recipient": recipient} if recipient else None)

    async def message(self, message_id: str) -> Message:
        """One message with its headers and both bodies."""
        return await self._call("GET", f"/api/messages/{message_id}")

    async def raw(self, message_id: str) -> bytes:
        response = await self._client.get(f"{self.base_url}/messages/{message_id}/raw")
        if response.is_error:
            raise MailboxControlError(response.status_code, response.text)
        return response.content

    async def attachment(self, message_id: str, index: int) -> bytes:
        response = await self._client.get(f"{self.base_url}/messages/{message_id}/attachments/{index}")
        if response.is_error:
            raise MailboxControlError(response.status_code, response.text)
        return response.content

    async def clear(self) -> int:
        """Forget every message; returns how many there were."""
        return (await self._call("DELETE", "/api/messages"))["deleted"]

    async def inject(
        self, reply: str | None = None, *, times: int = 1, stage: Literal["MAIL", "RCPT", "DATA"] = "RCPT",
        recipient: str | None = None, hang_seconds: float = 0.0, disconnect: bool = False,
    ) -> dict[str, Any]:
        """The next `times` transactions (for `recipient` only, if given) meet this at `stage`: wait
        `hang_seconds`, then answer `reply` (a 421 also closes the connection) or close without a word."""
        body = {"reply": reply, "times": times, "stage": stage, "recipient": recipient,
                "hang_seconds": hang_seconds, "disconnect": disconnect}
        return await self._call("POST", "/api/faults", body)

    async def faults(self) -> list[dict[str, Any]]:
        """Armed faults with the `times` they have left."""
        return await self._call("GET", "/api/faults")

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/api/faults")

    async def wait_for(
        self, match: int | Callable[[Message], bool] = 1, timeout: float = 10.0, *, count: int | None = None,
        poll_seconds: float = 0.1,
    ) -> list[Message]:
        """Poll until `count` messages match (a count, or a predicate on one message's JSON, then `count`
        defaults to 1); returns the matching ones, oldest first. TimeoutError names what did arrive."""
        predicate = match if callable(match) else (lambda _message: True)
        wanted = count if count is not None else (match if isinstance(match, int) else 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            messages = await self.messages()
            found = [message for message in messages if predicate(message)]
            if len(found) >= wanted:
                return found
            if loop.time() >= deadline:
                arrived = [(m["subject"], m["rcpt_tos"]) for m in messages]
                raise TimeoutError(f"{len(found)} of {wanted} expected messages after {timeout}s; arrived: {arrived}")
            await asyncio.sleep(poll_seconds)
