"""IngestService over gRPC: protobuf in, use case, protobuf out. Nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc
from google.protobuf.message import DecodeError

from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc
from billing_runtime.errors import InvalidArgument, Unauthenticated
from billing_runtime.service import Runtime
from billing_runtime.timestamps import from_timestamp
from services.ingest.adapters import native_scan
from services.ingest.adapters.event_log import JetStreamEventLog
from services.ingest.adapters.messages import api_key_to_pb, outcome_to_pb, project_to_pb
from services.ingest.config import IngestSettings
from services.ingest.domain.event import BatchOutcome
from services.ingest.domain.project import Project
from services.ingest.domain.quota import QUOTA_EXCEEDED, ratelimit_fields
from services.ingest.service import api_keys, events, projects
from services.ingest.service.ports import IngestTransaction
from services.ingest.service.projects import OrganisationDirectory
from services.ingest.service.quotas import QuotaEnforcer
from services.ingest.service.rate_limits import EventRateLimiter

# IngestEvents' trailing metadata keys where a quota applied (see quota_metadata); part of what the gateway reads.
RATELIMIT_POLICY = "ratelimit-policy"
RATELIMIT = "ratelimit"
RETRY_AFTER = "retry-after"


def _now() -> datetime:
    return datetime.now(UTC)


def api_key_from(context: grpc.aio.ServicerContext) -> str:
    """The key a caller presents: ``authorization: Bearer <key>`` or ``x-api-key: <key>``."""
    for name, value in context.invocation_metadata() or ():
        if name == "authorization":
            scheme, _, credentials = str(value).partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
        elif name == "x-api-key" and value:
            return str(value).strip()
    raise Unauthenticated("no API key: send 'authorization: Bearer <key>' (or 'x-api-key') metadata")


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(
        self,
        runtime: Runtime,
        settings: IngestSettings,
        uow: Callable[[], IngestTransaction],
        organisations: OrganisationDirectory,
        quotas: QuotaEnforcer | None = None,
        rates: EventRateLimiter | None = None,
    ) -> None:
        self._runtime = runtime
        self._uow = uow
        self._settings = settings
        self._organisations = organisations
        self._quotas = quotas
        self._rates = rates
        self._limits = settings.event_limits()
        self._keys = events.ApiKeyCache(settings.api_key_cache_seconds)
        self._event_log: JetStreamEventLog | None = None
        self._scanner = native_scan.load()

    async def CreateProject(self, request, context):  # noqa: N802 - gRPC method names
        project, created = await projects.create_project(
            self._uow(),
            self._runtime.outbox,
            self._organisations,
            projects.CreateProject(request.organisation_id, request.name, request.idempotency_key),
        )
        return ingest_pb2.CreateProjectResponse(project=project_to_pb(project), created=created)

    async def GetProject(self, request, context):  # noqa: N802
        project = await projects.get_project(self._uow(), request.project_id)
        return ingest_pb2.GetProjectResponse(project=project_to_pb(project))

    async def ListProjects(self, request, context):  # noqa: N802
        page, token = await projects.list_projects(
            self._uow(), request.organisation_id, request.page_size, request.page_token
        )
        return ingest_pb2.ListProjectsResponse(projects=[project_to_pb(p) for p in page], next_page_token=token)

    async def CreateApiKey(self, request, context):  # noqa: N802
        now = _now()
        expires_at = from_timestamp(request.expire_time, "expire_time") if request.HasField("expire_time") else None
        key, secret = await api_keys.create_api_key(
            self._uow(),
            self._runtime.outbox,
            api_keys.CreateApiKey(request.project_id, request.name, expires_at),
            now,
        )
        return ingest_pb2.CreateApiKeyResponse(api_key=api_key_to_pb(key, now), secret=secret)

    async def ListApiKeys(self, request, context):  # noqa: N802
        now = _now()
        page, token = await api_keys.list_api_keys(
            self._uow(), request.project_id, request.page_size, request.page_token
        )
        return ingest_pb2.ListApiKeysResponse(api_keys=[api_key_to_pb(k, now) for k in page], next_page_token=token)

    async def RevokeApiKey(self, request, context):  # noqa: N802
        now = _now()
        key = await api_keys.revoke_api_key(self._uow(), self._runtime.outbox, request.api_key_id, now)
        self._keys.forget(key.id)
        return ingest_pb2.RevokeApiKeyResponse(api_key=api_key_to_pb(key, now))

    async def VerifyApiKey(self, request, context):  # noqa: N802
        now = _now()
        project, key = await api_keys.verify_api_key(self._uow(), request.secret, now)
        return ingest_pb2.VerifyApiKeyResponse(project=project_to_pb(project), api_key=api_key_to_pb(key, now))

    async def IngestEvents(self, request: bytes, context):  # noqa: N802
        """Takes the request as bytes (see :func:`raw_event_handlers`)."""
        project = await self._authenticate(api_key_from(context))
        _, outcome = await events.ingest_encoded(
            self._log(), self._scanner, project, request, _parser(ingest_pb2.IngestEventsRequest), _now(),
            self._limits, self._quotas, self._rates,
        )
        metadata = quota_metadata(outcome)
        if outcome.all_refused_for_quota:
            reason = next(r.reason for r in outcome.results if r.reason.startswith(QUOTA_EXCEEDED))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, reason, metadata)
        if metadata:
            context.set_trailing_metadata(metadata)
        return ingest_pb2.IngestEventsResponse(outcome=outcome_to_pb(outcome))

    async def StreamEvents(self, request_iterator, context) -> AsyncIterator[ingest_pb2.StreamEventsResponse]:  # noqa: N802
        """Batches are screened and written concurrently (up to the in-flight limit) and acknowledged as each
        becomes durable. A failure to write ends the stream with UNAVAILABLE; the client resends what it has
        not seen acknowledged, with the same ids. Takes each request as bytes (see :func:`raw_event_handlers`)."""
        secret = api_key_from(context)
        await self._authenticate(secret)  # refuse a bad key before reading anything
        window = asyncio.Semaphore(self._settings.stream_max_in_flight_batches)
        finished: asyncio.Queue[asyncio.Task[ingest_pb2.StreamEventsResponse] | BaseException | None] = asyncio.Queue()
        pending: set[asyncio.Task[ingest_pb2.StreamEventsResponse]] = set()

        def _done(task: asyncio.Task[ingest_pb2.StreamEventsResponse]) -> None:
            pending.discard(task)
            window.release()
            finished.put_nowait(task)

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await window.acquire()
                    task = asyncio.create_task(self._stream_batch(secret, request))
                    pending.add(task)
                    task.add_done_callback(_done)
                finished.put_nowait(None)
            except BaseException as error:  # noqa: BLE001 - handed to the writer, which ends the call with it
                finished.put_nowait(error)

        reader = asyncio.create_task(read())
        try:
            reading = True
            while reading or pending or not finished.empty():
                item = await finished.get()
                if item is None:
                    reading = False
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item.result()
        finally:
            reader.cancel()
            for task in pending:
                task.cancel()

    async def _stream_batch(self, secret: str, request: bytes) -> ingest_pb2.StreamEventsResponse:
        project = await self._authenticate(secret)  # a key revoked mid-stream stops being honoured
        parse = _parser(ingest_pb2.StreamEventsRequest)
        try:
            sequence, outcome = await events.ingest_encoded(
                self._log(), self._scanner, project, request, parse, _now(), self._limits, self._quotas,
                self._rates, self._settings.rate_limit_stream_max_wait_seconds,
            )
        except InvalidArgument as error:
            sequence = parse(request).sequence
            raise InvalidArgument(f"batch {sequence}: {error.message}", field=error.field) from error
        return ingest_pb2.StreamEventsResponse(sequence=sequence, outcome=outcome_to_pb(outcome))

    async def _authenticate(self, secret: str) -> Project:
        return await self._keys.project_for(self._uow, secret, _now())

    def _log(self) -> JetStreamEventLog:
        if self._event_log is None:
            # Created on first use: NATS is connected by then (RPCs are refused until the service is ready).
            assert self._runtime.nats is not None and self._runtime.js is not None
            self._event_log = JetStreamEventLog(
                self._runtime.nats, self._runtime.js, timeout_seconds=self._settings.publish_timeout_seconds
            )
        return self._event_log


def quota_metadata(outcome: BatchOutcome) -> tuple[tuple[str, str], ...]:
    """IngestEvents' trailing metadata where a quota applied: the IETF RateLimit fields (which the gateway
    copies into its HTTP response) and, when events were refused for one, ``retry-after`` in seconds."""
    metadata: list[tuple[str, str]] = []
    if outcome.quotas:
        policy, current = ratelimit_fields(outcome.quotas)
        metadata += [(RATELIMIT_POLICY, policy), (RATELIMIT, current)]
    if outcome.retry_after_seconds is not None:
        metadata.append((RETRY_AFTER, str(outcome.retry_after_seconds)))
    return tuple(metadata)


def _parser(message_type):
    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except DecodeError as error:
            raise InvalidArgument(f"not a valid {message_type.DESCRIPTOR.name}: {error}") from error

    return parse


def raw_event_handlers(servicer: IngestServicer) -> dict[str, grpc.RpcMethodHandler]:
    """IngestEvents and StreamEvents take their requests as bytes, so a clean batch is scanned and forwarded
    without being turned into Python objects. Registered after the generated handlers, which they replace."""
    return {
        "IngestEvents": grpc.unary_unary_rpc_method_handler(
            servicer.IngestEvents, response_serializer=ingest_pb2.IngestEventsResponse.SerializeToString
        ),
        "StreamEvents": grpc.stream_stream_rpc_method_handler(
            servicer.StreamEvents, response_serializer=ingest_pb2.StreamEventsResponse.SerializeToString
        ),
    }
