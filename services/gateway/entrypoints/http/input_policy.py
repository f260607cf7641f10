"""One input policy at the edge, applied to every route once (an application-wide dependency), before a route's
own validation and before anything reaches a service or a database:

- text (path parameters, query values, header values, and every key and string of a JSON body, however nested,
  e.g. a metric's ``filters`` map) must be storable by PostgreSQL: no NUL character, no lone surrogate
  (``"\\ud800"`` is valid JSON but not Unicode text);
- every integer of a JSON body fits in int64 (the services' protobuf fields; a field may say less);
- a body that is not UTF-8 or not JSON, and every error Starlette raises itself (404, 405, 413), answers in our
  error shape ``{"error", "detail", "field"}``; a 405's ``Allow`` lists every method the path has.

A refusal names the field in the body's path style (``terms.charges[0].charge``, ``filters.region``) and never
echoes the input: :func:`clip` bounds any client text quoted in a message."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from billing_runtime.errors import InvalidArgument

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# How much of a client's text an error message may quote.
MAX_QUOTED = 64


def clip(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` cut to ``limit`` characters (and an ellipsis): what an error message may quote of client input."""
    return text if len(text) <= limit else text[:limit] + "…"


def text_problem(text: str) -> str | None:
    """Why PostgreSQL (or protobuf) cannot take ``text``, or None."""
    if "\x00" in text:
        return "must not contain a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (it holds a lone surrogate escape such as \\ud800)"
    return None


def _joined(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_json(value: Any, path: str = "") -> None:
    """Every string (keys included) and integer of a parsed JSON document, depth first; InvalidArgument naming the
    first field at fault."""
    # Iterative: a deeply nested body must not exhaust the stack here (the JSON parser bounds the depth anyway).
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise InvalidArgument(problem, field=where or None)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise InvalidArgument(f"is out of range: an integer from {INT64_MIN} to {INT64_MAX}",
                                      field=where or None)
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if isinstance(key, str) and (problem := text_problem(key)):
                    raise InvalidArgument(f"has a key that {problem}", field=where or None)
                stack.append((child, _joined(where, key)))
        elif isinstance(item, list):
            stack.extend((child, _joined(where, index)) for index, child in reversed(list(enumerate(item))))


async def edge_input(request: Request) -> None:
    """The application-wide dependency: path, query, headers, then the JSON body when the route parsed one."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and (problem := text_problem(value)):
            raise InvalidArgument(problem, field=name)
    for name, value in request.query_params.multi_items():
        for text, what in ((name, "a query parameter name"), (value, None)):
            if problem := text_problem(text):
                field = clip(name) if text_problem(name) is None else None
                raise InvalidArgument(problem if what is None else f"{what} {problem}", field=field)
    for name, value in request.headers.items():
        if "\x00" in value:
            raise InvalidArgument("must not contain a NUL character", field=clip(name))
    route = request.scope.get("route")
    # Only a body the route itself parsed (cached on the request): routes that read their body as a stream (events,
    # provider webhooks) bound and check it themselves, and are not made to buffer it here.
    if getattr(route, "body_field", None) is not None and hasattr(request, "_json"):
        check_json(request._json)  # noqa: SLF001 - Starlette's cache of the parsed body; parsed once


_ERRORS = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
           405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
           422: "invalid_argument", 429: "resource_exhausted", 503: "unavailable"}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the path takes: FastAPI adds a route per method (nested in included routers),
    and Starlette's 405 names only the first matching route's."""
    scope = request.scope
    return [method for method in _METHODS
            if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in request.app.router.routes)]


async def http_error(request: Request, error: HTTPException) -> JSONResponse:
    """Starlette's and FastAPI's own errors (unknown path, wrong method, a body that cannot be parsed) in our
    shape, instead of ``{"detail": ...}``."""
    headers = dict(error.headers or {})
    status = error.status_code
    if status == 405:
        methods = _allowed_methods(request)
        if methods:
            headers["Allow"] = ", ".join(methods)
        detail = f"method {request.method} is not allowed here; allowed: {headers.get('Allow', 'none')}"
    elif status == 400 and error.detail == "There was an error parsing the body":
        cause = error.__cause__
        reason = "not UTF-8" if isinstance(cause, UnicodeDecodeError) else "cannot be parsed"
        detail = f"request body: is not valid JSON ({reason})"
    elif status == 404 and error.detail == "Not Found":
        detail = f"no such path: {clip(request.url.path)}"
    else:
        detail = str(error.detail)
    return JSONResponse({"error": _ERRORS.get(status, "error"), "detail": detail}, status_code=status,
                        headers=headers or None)
