"""The pages a person reads mail on: the list, one message, its HTML body, its attachments and its raw bytes.

A mail's HTML is somebody else's markup: it is served from its own URL with a Content-Security-Policy that
sandboxes it (no scripts, no forms, no same-origin access to these pages or the API) and shown in a sandboxed
iframe, so even a hostile message can only draw itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from sandboxes.smtp.api import mailbox_of, message_or_404

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)
# Our own pages: no scripts at all, frames only from here.
PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; form-action 'none'"
# The mail's HTML: its inline styles and embedded (data:) images draw, nothing runs, nothing loads from elsewhere.
# Popups stay allowed so the message's links open in a new tab (see BASE_TARGET).
MAIL_CSP = ("sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:; font-src data:; form-action 'none'")
IFRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"
BASE_TARGET = '<base target="_blank">'
SAFE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
router = APIRouter(include_in_schema=False)


def render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(name).render(**context),
                        headers={"Content-Security-Policy": PAGE_CSP, **SAFE_HEADERS})


def content_disposition(kind: str, filename: str) -> str:
    """RFC 6266: an ASCII fallback for old clients and the exact UTF-8 name for the rest."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_").replace("?", "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> HTMLResponse:
    mailbox = mailbox_of(request)
    messages = list(reversed(mailbox.store.all()))  # newest first, as in any mail client
    return render("index.html", messages=messages, smtp=mailbox.smtp_address)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def message_page(request: Request, message_id: str) -> HTMLResponse:
    message = message_or_404(request, message_id)
    return render("message.html", message=message, headers=list(message.email.items()),
                  iframe_sandbox=IFRAME_SANDBOX)


@router.get("/messages/{message_id}/html")
async def message_html(request: Request, message_id: str) -> HTMLResponse:
    html = message_or_404(request, message_id).html
    if html is None:
        raise HTTPException(404, "this message has no HTML part")
    return HTMLResponse(BASE_TARGET + html, headers={"Content-Security-Policy": MAIL_CSP, **SAFE_HEADERS})


@router.get("/messages/{message_id}/attachments/{index}")
async def attachment(request: Request, message_id: str, index: int) -> Response:
    attachments = message_or_404(request, message_id).attachments
    if not 0 <= index < len(attachments):
        raise HTTPException(404, "no such attachment")
    found = attachments[index]
    # Always a download, never rendered here: an HTML or SVG attachment must not run on this origin.
    return Response(found.content, media_type=found.content_type, headers={
        "Content-Disposition": content_disposition("attachment", found.filename),
        "Content-Security-Policy": "sandbox; default-src 'none'", **SAFE_HEADERS})


@router.get("/messages/{message_id}/raw")
async def raw(request: Request, message_id: str) -> Response:
    message = message_or_404(request, message_id)
    return Response(message.raw, media_type="message/rfc822", headers={
        "Content-Disposition": content_disposition("attachment", f"{message.id}.eml"), **SAFE_HEADERS})


@router.get("/favicon.ico", include_in_schema=False)
async def favicon(_request: Request) -> Response:
    return Response(status_code=204)  # browsers ask on every page; a 404 would only clutter the log
