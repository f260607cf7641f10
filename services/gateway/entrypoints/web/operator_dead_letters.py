"""Operators' dead letters: event batches metering could not process (the reason, how often delivered, when),
each with its payload, replayed once the cause is fixed or discarded saying why. The pages call the admin API's
own routes: a replay is the API's (safe to repeat: events are deduplicated; audited ``dead_letter.replay``), a
discard too (audited ``dead_letter.discard``)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import ValidationError

from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http import metering, metering_schemas
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.forms import form_fields
from services.gateway.entrypoints.web.rendering import PREFIX, redirect, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
SHOW = Presentation()


@router.get("/dead-letters")
async def dead_letters_page(request: Request, page_token: str = "") -> Response:
    letters = await metering.dead_letters(request, page_size=50, page_token=page_token)
    return render(request, "operator/dead_letters.html", letters=letters, show=SHOW, title="Dead letters")


@router.post("/dead-letters/{sequence}/replay")
async def replay(sequence: Annotated[int, Path(ge=1)], request: Request) -> Response:
    """The API's replay. From the list (htmx aiming at the letter's row) it answers the row, replayed; from the
    letter's own page, that page again."""
    replayed = await metering.replay_dead_letter(sequence, request)
    if request.headers.get("hx-target") != f"letter-{sequence}":
        return redirect(request, f"{PREFIX}/operator/dead-letters/{sequence}")
    return render(request, "operator/dead_letter_row.html", letter=replayed.dead_letter, show=SHOW,
                  replay=replayed)


@router.get("/dead-letters/{sequence}")
async def dead_letter_page(sequence: Annotated[int, Path(ge=1)], request: Request) -> Response:
    """One letter with its payload decoded (an event batch's events as JSON, bounded by the API)."""
    letter = await metering.dead_letter(sequence, request)
    return render(request, "operator/dead_letter.html", letter=letter, payload=_indented(letter.payload), show=SHOW,
                  title=f"Dead letter {sequence}")


def _indented(payload: str) -> str:
    """The payload laid out for reading (the API's text as it is when it was cut short and is no JSON)."""
    try:
        return json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except ValueError:
        return payload


@router.post("/dead-letters/{sequence}/discard")
async def discard(sequence: Annotated[int, Path(ge=1)], request: Request) -> Response:
    """The API's discard, saying why (audited ``dead_letter.discard``): the letter stays readable, not replayable."""
    fields = await form_fields(request)
    try:
        body = metering_schemas.DeadLetterDiscard(reason=fields.get("reason", ""))
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidArgument(first.get("msg", "is not valid"), field="reason") from None
    await metering.discard_dead_letter(sequence, body, request)
    return redirect(request, f"{PREFIX}/operator/dead-letters/{sequence}")
