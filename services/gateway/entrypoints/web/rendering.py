"""Templates and answers of the dashboard: one Jinja2 environment (autoescaped), the headers every page carries
(a strict Content-Security-Policy: scripts and styles from /app/static only; no framing; not cached; the one
exception, an invoice's page while it is being paid, adds exactly the payment provider's script, frame and API
origins), and errors as pages instead of the API's JSON (a person sees a sentence and the way back; an expired
session goes to the sign-in form)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from billing_runtime.error_mapping import http_body, http_status
from billing_runtime.errors import DomainError, Unauthenticated
from services.gateway.domain.sessions import csrf_token_of

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
PREFIX = "/app"
# Scripts only from our own files (no inline script, no eval); JSON data blocks are not scripts.
POLICY: Mapping[str, tuple[str, ...]] = {
    "default-src": ("'self'",), "script-src": ("'self'",), "style-src": ("'self'",), "img-src": ("'self'", "data:"),
    "connect-src": ("'self'",), "frame-ancestors": ("'none'",), "form-action": ("'self'",),
    "base-uri": ("'none'",), "object-src": ("'none'",),
}


def content_security_policy(extra: Mapping[str, tuple[str, ...]] | None = None) -> str:
    """The dashboard's policy, with ``extra`` sources added per directive (a directive the policy leaves to
    ``default-src``, such as ``frame-src``, then allows those sources only)."""
    directives = {name: list(sources) for name, sources in POLICY.items()}
    for name, sources in (extra or {}).items():
        directives.setdefault(name, [])
        directives[name] += [source for source in sources if source not in directives[name]]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


CONTENT_SECURITY_POLICY = content_security_policy()


def page_headers(extra_sources: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(extra_sources),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


PAGE_HEADERS = page_headers()

environment = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]), trim_blocks=True,
    lstrip_blocks=True,
)


def is_page(request: Request) -> bool:
    path = request.url.path
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(PREFIX + "/static/")


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def csrf_of(request: Request) -> str:
    """The session's CSRF token, which htmx sends as X-CSRF-Token with every write (empty when not signed in)."""
    session_id = getattr(request.state, "session_id", "")
    return csrf_token_of(session_id) if session_id else ""


def render(request: Request, template: str, status_code: int = 200, *,
           csp_sources: Mapping[str, tuple[str, ...]] | None = None, **context: Any) -> HTMLResponse:
    """A page; ``csp_sources``: what its policy allows beyond the dashboard's own (a provider's script)."""
    principal = getattr(request.state, "principal", None)
    html = environment.get_template(template).render(
        request=request, principal=principal, csrf_token=csrf_of(request), path=request.url.path, **context
    )
    headers = page_headers(csp_sources) if csp_sources else PAGE_HEADERS
    return HTMLResponse(html, status_code=status_code, headers=headers)


def redirect(request: Request, to: str) -> Response:
    """303 to ``to``; for an htmx request, ``HX-Redirect`` so the whole page moves rather than a fragment."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": to, **PAGE_HEADERS})
    return RedirectResponse(to, status_code=303, headers=PAGE_HEADERS)


def error_page(request: Request, error: DomainError) -> Response:
    """A refused or failed page: not signed in (or the session ended) goes to the sign-in form; anything else is
    a page with the API's status and sentence (404 for another organisation's invoice, as for a made-up one)."""
    if isinstance(error, Unauthenticated):
        to = f"{PREFIX}/login"
        if request.method == "GET" and request.url.path != PREFIX:
            to += "?next=" + quote(request.url.path, safe="/")
        return redirect(request, to)
    body = http_body(error)
    if is_htmx(request):  # a part of a page asked (app.js shows it where the form says)
        return render(request, "error_fragment.html", status_code=http_status(error), detail=body.get("detail", ""))
    return render(request, "error.html", status_code=http_status(error), detail=body.get("detail", ""),
                  status=http_status(error))


def failure_page(request: Request, request_id: str) -> Response:
    return render(request, "error.html", status_code=500, status=500,
                  detail=f"Something went wrong on our side (request id {request_id}).")
