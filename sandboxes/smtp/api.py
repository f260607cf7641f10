"""The JSON API under /api, for tests and tools: read messages, clear them, arm and clear faults."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from sandboxes.smtp.faults import Fault
from sandboxes.smtp.message import ReceivedMessage
from sandboxes.smtp.state import Mailbox

router = APIRouter(prefix="/api")


def mailbox_of(request: Request) -> Mailbox:
    return request.app.state.mailbox


def message_or_404(request: Request, message_id: str) -> ReceivedMessage:
    message = mailbox_of(request).store.get(message_id)
    if message is None:
        raise HTTPException(404, f"no message {message_id}")
    return message


class FaultRequest(BaseModel):
    """What the next `times` transactions meet at `stage` (for `recipient` only, if given)."""

    stage: Literal["MAIL", "RCPT", "DATA"] = "RCPT"
    reply: str | None = Field(None, description="e.g. '451 4.3.0 try again later'; a 421 also closes the connection")
    times: int = Field(1, ge=1)
    recipient: str | None = None
    hang_seconds: float = Field(0.0, ge=0, le=3600, description="wait this long first")
    disconnect: bool = Field(False, description="close the connection without a reply")


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    mailbox = mailbox_of(request)
    return {"status": "ok", "smtp": mailbox.smtp_address, "messages": len(mailbox.store.all())}


@router.get("/messages")
async def list_messages(request: Request, recipient: str | None = None) -> list[dict[str, Any]]:
    """Oldest first (arrival order), optionally only those whose envelope names `recipient`."""
    messages = mailbox_of(request).store.all()
    if recipient is not None:
        messages = [m for m in messages if recipient.lower() in (r.lower() for r in m.rcpt_tos)]
    return [message.summary() for message in messages]


@router.get("/messages/{message_id}")
async def get_message(request: Request, message_id: str) -> dict[str, Any]:
    return message_or_404(request, message_id).detail()


@router.delete("/messages")
async def clear_messages(request: Request) -> dict[str, int]:
    return {"deleted": mailbox_of(request).store.clear()}


@router.get("/faults")
async def list_faults(request: Request) -> list[dict[str, Any]]:
    return [fault.view() for fault in mailbox_of(request).faults.armed()]


@router.post("/faults", status_code=201)
async def arm_fault(request: Request, body: FaultRequest) -> dict[str, Any]:
    try:
        fault = Fault(**body.model_dump())
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return mailbox_of(request).faults.arm(fault).view()


@router.delete("/faults", status_code=204)
async def clear_faults(request: Request) -> None:
    mailbox_of(request).faults.clear()
