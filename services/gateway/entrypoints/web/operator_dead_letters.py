"""Operators' dead letters: event batches metering could not process (the reason, how often delivered, when) and
their replay once the cause is fixed. The page calls the admin API's own routes: a replay is the API's (safe to
repeat: events are deduplicated; audited ``dead_letter.replay``), and answers the letter's row, replayed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from services.gateway.entrypoints.http import metering
from services.gateway.entrypoints.web.formatting import Presentation
from services.gateway.entrypoints.web.rendering import PREFIX, render

router = APIRouter(prefix=f"{PREFIX}/operator", include_in_schema=False)
SHOW = Presentation()


@router.get("/dead-letters")
async def dead_letters_page(request: Request, page_token: str = "") -> Response:
    letters = await metering.dead_letters(request, page_size=50, page_token=page_token)
    return render(request, "operator/dead_letters.html", letters=letters, show=SHOW, title="Dead letters")


@router.post("/dead-letters/{sequence}/replay")
async def replay(sequence: Annotated[int, Path(ge=1)], request: Request) -> Response:
    replayed = await metering.replay_dead_letter(sequence, request)
    return render(request, "operator/dead_letter_row.html", letter=replayed.dead_letter, show=SHOW,
                  replay=replayed)
