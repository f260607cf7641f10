"""POST /api/v1/events (and its alias /api/v1/ingest): usage events over REST, handed to ingest over gRPC.

The gateway checks each event's JSON shape; ingest authenticates the key, applies the domain rules, makes the
accepted events durable in JetStream and says what happened to each. The answer is 202 with a result for every
event, in request order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from billing_runtime.error_mapping import from_grpc_error
from services.gateway.entrypoints.http import event_schemas, events_json, schemas
from services.gateway.entrypoints.http.api_key import key_metadata, presented_api_key

router = APIRouter(prefix="/api/v1", tags=["events"])

_DESCRIPTION = """Send usage events with a project's API key.

The body is one event object, a list of them, or `{"events": [...]}`; at most 10,000 events per request
(ingest's limit, configurable) and `GATEWAY_EVENTS_MAX_BODY_BYTES` (16 MiB by default) of JSON. Numbers are read
as exact decimals: `0.1` is counted as 0.1, never as a float.

The answer is **202** with a result for every event, in request order: `accepted` (durable; it will be counted
once), `duplicate` (already received; counted once), or `rejected` with the `reason` and the `field` at fault.
A bad event rejects that event only. Retrying with the same `idempotencyKey`s is always safe. An event without
one gets a generated id, returned with `eventIdGenerated: true`.

Quotas: where the organisation's plan enforces a hard cap at ingest, events that would take usage over it are
`rejected` with a reason starting `quota exceeded: ` (naming the quota) and the field `metricName`. When every
event of the request is refused for a quota the answer is **429** with `Retry-After` (seconds until the quota
resets) and `{"error": "quota_exceeded", "detail": ...}`. Wherever a quota applies, the response carries the IETF
`RateLimit-Policy` and `RateLimit` fields, one member per metric: `"<metric>";q=<limit>;w=<period seconds>` and
`"<metric>";r=<remaining>;t=<seconds to reset>`.

Rate limits: each project may send so many events per second, with bursts (its plan's `ingest_rate_limit`, or
the platform's default). A request over it is refused whole: **429** with `Retry-After` and
`{"error": "rate_limited", "detail": ...}`; nothing of it was written, and sending it again later is safe.

Whole-request errors: 401 missing or unknown key, 403 revoked or expired key, 400 body that is not JSON or
not one of the three shapes, or more events than the limit (the message says the limit), 413 body too large,
429 every event over a quota, or the project over its event rate.
"""

# IngestEvents' trailing metadata where a quota applied, and the HTTP fields they become.
_QUOTA_FIELDS = {"ratelimit-policy": "RateLimit-Policy", "ratelimit": "RateLimit", "retry-after": "Retry-After"}


class PayloadTooLarge(Exception):
    """The body is past the configured size; answered 413 before it is parsed."""


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # a client that sent no Content-Length, or a wrong one
            raise PayloadTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def ingest_events(request: Request, api_key: Annotated[str, Depends(presented_api_key)]) -> Response:
    settings = request.app.state.settings
    limit = settings.events_max_body_bytes
    try:
        body = await _read_body(request, limit)
    except PayloadTooLarge:
        return JSONResponse(
            {"error": "payload_too_large",
             "detail": f"request body is larger than {limit} bytes: send fewer events per request"},
            status_code=413,
        )
    parsed = events_json.parse_events(body, datetime.now(UTC))  # raises InvalidArgument (400) for the body
    # Sent even when the gateway rejected every event (or there were none): ingest still checks the key, so a
    # bad key is a 401/403 whatever the body holds.
    call = request.app.state.clients.ingest.IngestEvents(
        parsed.request, timeout=settings.events_timeout_seconds, metadata=key_metadata(api_key)
    )
    try:
        reply = await call
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise from_grpc_error(error) from None
        headers = quota_headers(error.trailing_metadata())
        if "Retry-After" in headers and "RateLimit-Policy" not in headers:  # the project's event rate, not a quota
            raise from_grpc_error(error) from None
        if "Retry-After" not in headers:  # past gRPC's message size on either side
            return JSONResponse({"error": "payload_too_large",
                                 "detail": f"too many events in one request: {error.details()}"}, status_code=413)
        if not parsed.rejected:
            return JSONResponse({"error": "quota_exceeded", "detail": error.details()}, status_code=429,
                                headers=headers)
        # Ingest refused every event it was sent, but the gateway rejected others itself: the usual answer, so
        # those keep their own reasons.
        del headers["Retry-After"]
        result = events_json.merge_results(parsed, events_json.all_refused(parsed, error.details() or ""))
        return Response(json.dumps(result, separators=(",", ":")), status_code=202, media_type="application/json",
                        headers=headers)
    result = events_json.merge_results(parsed, reply.outcome)
    return Response(json.dumps(result, separators=(",", ":")), status_code=202, media_type="application/json",
                    headers=quota_headers(await call.trailing_metadata()))


def quota_headers(metadata: object) -> dict[str, str]:
    """The HTTP fields for the quotas that applied, from IngestEvents' trailing metadata."""
    headers: dict[str, str] = {}
    for key, value in metadata or ():  # type: ignore[attr-defined]
        name = _QUOTA_FIELDS.get(key)
        if name is not None and isinstance(value, str):
            headers[name] = value
    return headers


_ERRORS = {status: {"model": schemas.Error} for status in (400, 401, 403, 413, 429, 503)}
for _path, _summary in (("/events", "Send usage events"), ("/ingest", "Send usage events (alias of /events)")):
    router.add_api_route(
        _path, ingest_events, methods=["POST"], status_code=202, summary=_summary, description=_DESCRIPTION,
        responses={202: {"model": event_schemas.IngestResult}, **_ERRORS},
        openapi_extra={"requestBody": event_schemas.EVENTS_REQUEST_BODY},
        operation_id="ingest_events" if _path == "/events" else "ingest_events_alias",
    )
