"""The few form posts of the dashboard, read without a multipart library: URL-encoded, bounded in size."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from pydantic import ValidationError

from billing_runtime.errors import InvalidArgument
from services.gateway.entrypoints.http.input_policy import text_problem

MAX_FORM_BYTES = 8 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """The first value of every field of an ``application/x-www-form-urlencoded`` body."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidArgument("the form is too large")
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument("the form cannot be read") from None
    fields = {name: values[0] for name, values in parsed.items()}
    for name, value in fields.items():
        if text_problem(name) or (problem := text_problem(value)):
            raise InvalidArgument(problem or "a field name cannot be read", field=name if not text_problem(name)
                                  else None)
    return fields


def form_body(model: type, fields: dict[str, Any], *, whole: str = "form") -> Any:
    """A REST body from a form, refused as the API refuses it (the first problem, naming the field; ``whole``
    names what a check of the body as a whole is about)."""
    try:
        return model(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidArgument(first.get("msg", "is not valid").removeprefix("Value error, "),
                              field=str((first.get("loc") or (whole,))[0])) from None
