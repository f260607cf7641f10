"""Exact decimals in JSON request bodies: numbers are read as ``Decimal`` (never ``float``) and handed on as text.

Starlette's ``Request.json()`` uses ``json.loads`` with its defaults, so ``0.1`` becomes the float
0.1000000000000000055511151231257827...; a pydantic ``Decimal`` field would then hold that float's value.
Routes of a router built with :class:`DecimalJsonRoute` parse their body with ``parse_float=Decimal`` instead,
and :data:`DecimalText` fields turn a JSON number or a decimal string into the plain text the services' protobuf
fields take (``1e3`` -> ``"1000"``). Whether the text is a valid price is the owning service's to say (it names
the field); the gateway only refuses what cannot be written exactly: floats, booleans, NaN and infinities.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BeforeValidator, WithJsonSchema

# Past this exponent, "1e999999" would expand to a million digits of text; no price or quantity needs it.
MAX_EXPONENT = 64


class DecimalJsonRequest(Request):
    """A request whose JSON body reads numbers as ``Decimal`` (and NaN / Infinity as non-finite ``Decimal``s,
    which :func:`decimal_text` then refuses with the field's name)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal, parse_constant=Decimal)
        return self._json


class DecimalJsonRoute(APIRoute):
    """``APIRouter(route_class=DecimalJsonRoute)``: every route of the router parses bodies exactly."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_handler(request: Request) -> Response:
            return await handler(DecimalJsonRequest(request.scope, request.receive))

        return exact_handler


def decimal_text(value: Any) -> str:
    """A JSON number (int or ``Decimal``) or a string as decimal text for a protobuf string field.

    Strings pass through unchanged (the service validates them and names the field); numbers are written
    without an exponent. Floats, booleans and non-finite numbers raise ``ValueError`` (pydantic reports it
    as a 400 naming the field)."""
    if isinstance(value, str):
        if not value.strip():  # the schema's pattern: "" is no number (a service would read it as 0)
            raise ValueError("must be a decimal number, not an empty string")
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError("must be a decimal number (a JSON number or a string such as \"12.50\")")
    if isinstance(value, float):  # only reachable when a body was parsed without DecimalJsonRoute
        raise ValueError("must be an exact decimal: send it as a string such as \"12.50\"")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number, not NaN or Infinity")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and abs(exponent) > MAX_EXPONENT:
            raise ValueError(f"has an exponent past {MAX_EXPONENT}: write the number out, as a string")
        text = f"{value:f}"
        return "0" if text in ("-0", "+0") else text
    raise ValueError("must be a decimal number (a JSON number or a string such as \"12.50\")")


DECIMAL_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"}, {"type": "number"}],
    "description": "An exact decimal: a string such as \"0.0025\", or a JSON number (read exactly, never as a "
    "binary float)",
}
DecimalText = Annotated[str, BeforeValidator(decimal_text), WithJsonSchema(DECIMAL_SCHEMA, mode="validation")]
"""A decimal request field, held as text: ``"0.10"`` stays ``"0.10"``, ``0.10`` becomes ``"0.10"``."""
