"""A client of the IRP sandbox's control API (``/_sandbox``), for tests and for a developer at ``make run``."""

from __future__ import annotations

from typing import Any

import httpx


class IrpControl:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.url, timeout=10)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._http.request(method, f"/_sandbox{path}", **kw)
        response.raise_for_status()
        return response.json()

    async def advance(self, seconds: float) -> str:
        """Move the sandbox's clock on; its time now (ISO, IST)."""
        return (await self._call("POST", "/clock", json={"advance_seconds": seconds}))["now"]

    async def reset_clock(self) -> None:
        await self._call("POST", "/clock", json={"reset": True})

    async def outage(self, calls: int) -> None:
        """The next ``calls`` API calls answer 503; -1 until told otherwise, 0 ends it."""
        await self._call("POST", "/outage", json={"calls": calls})

    async def irns(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/irns")

    async def keys(self) -> dict[str, str]:
        """``auth_public_key`` (the AppKey is encrypted to it) and ``signing_public_key`` (signatures verify)."""
        return await self._call("GET", "/keys")

    async def register(self, gstin: str, document: dict[str, Any]) -> dict[str, Any]:
        """Register ``document`` as if by hand on the portal, bypassing the API (and an outage)."""
        return await self._call("POST", "/register", json={"gstin": gstin, "document": document})
