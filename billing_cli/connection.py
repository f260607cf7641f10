"""Where the gateway is and how to authenticate: flags, then environment, then .run/endpoints.json."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def endpoints_file() -> Path | None:
    """``$BILLING_ENDPOINTS``, else ``.run/endpoints.json`` in the current directory or the checkout."""
    explicit = os.environ.get("BILLING_ENDPOINTS")
    if explicit:
        return Path(explicit)
    for candidate in (Path.cwd() / ".run" / "endpoints.json", REPO_ROOT / ".run" / "endpoints.json"):
        if candidate.exists():
            return candidate
    return None


class CliError(Exception):
    """Shown to the operator as one line, exit status 1."""


@dataclass
class Gateway:
    url: str
    admin_token: str
    # The demo project's API key from .run/endpoints.json, if there is one (a default for `events send`).
    demo_api_key: str = ""

    @classmethod
    def resolve(cls, url: str | None, admin_token: str | None, *, need_admin_token: bool = True) -> Gateway:
        found: dict[str, Any] = {}
        path = endpoints_file()
        if path is not None and path.exists():
            found = json.loads(path.read_text())
        url = url or os.environ.get("BILLING_GATEWAY_URL") or found.get("gateway")
        token = admin_token or os.environ.get("BILLING_ADMIN_TOKEN") or found.get("admin_token")
        if not url or (need_admin_token and not token):
            raise CliError(
                "no gateway configured: start the platform with `make run` (it writes .run/endpoints.json), "
                "or pass --gateway and --admin-token (or BILLING_GATEWAY_URL / BILLING_ADMIN_TOKEN)"
            )
        demo = found.get("demo") or {}
        return cls(url.rstrip("/"), token or "", str(demo.get("api_key") or ""))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a request; a 4xx/5xx is a :class:`CliError` with the API's detail."""
        return self.send(method, path, **kwargs).json()

    def stream_lines(self, method: str, path: str, **kwargs: Any) -> Iterator[str]:
        """The lines of a streamed answer (JSON lines), as they arrive; errors as for :meth:`request`."""
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        try:
            with httpx.stream(method, f"{self.url}{path}", headers=headers, timeout=60.0, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    try:
                        message = response.json().get("detail") or response.text
                    except ValueError:
                        message = response.text
                    raise CliError(f"{response.status_code}: {message}")
                yield from (line for line in response.iter_lines() if line)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the gateway at {self.url}: {error}") from None

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a request that succeeded (for bodies that are not JSON, such as a PDF)."""
        headers = {"Authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        timeout = kwargs.pop("timeout", 10.0)
        try:
            response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=timeout, **kwargs)
        except httpx.HTTPError as error:
            raise CliError(f"cannot reach the gateway at {self.url}: {error}") from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = body.get("detail") or body
            except ValueError:
                message = response.text
            raise CliError(f"{response.status_code}: {message}")
        return response
