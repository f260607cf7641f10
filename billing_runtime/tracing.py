"""OpenTelemetry tracing: a span per RPC and HTTP request, context carried across services in gRPC metadata
and in NATS headers (``traceparent``), and the trace id on every log line.

Spans are exported over OTLP when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set; without it traces still propagate and appear in logs, so
one request can be followed through every service's log with ``trace_id``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_OTLP_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_tracing(service: str, extra_processor: SpanProcessor | None = None) -> TracerProvider:
    """Install the process's tracer provider (once per process), exporting over OTLP when configured."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"billing-{service}"}))
    if any(os.environ.get(variable) for variable in _OTLP_VARIABLES):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    return provider


def shutdown_tracing() -> None:
    """Flush spans still buffered for export."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def inject_context(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current trace context (``traceparent``) to message headers, for whoever consumes them."""
    propagate.inject(headers)
    return headers


_tracer = trace.get_tracer("billing_runtime.messaging")
# A consumer span links to at most this many of the messages it handles (the SDK's own default limit).
_MAX_LINKS = 128


def extract_context(headers: Mapping[str, str] | None) -> otel_context.Context | None:
    """The trace context a message's headers carry (``traceparent``), or None when they carry none."""
    if not headers:
        return None
    extracted = propagate.extract(headers)
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


@contextmanager
def producer_span(subject: str, headers: MutableMapping[str, str]) -> Iterator[trace.Span]:
    """A PRODUCER span for publishing one message on ``subject``, continuing the trace the headers already carry
    (an outbox row keeps its writer's) or else the current one; the headers then carry this span to the consumer."""
    parent = extract_context(headers)
    with _tracer.start_as_current_span(
        f"{subject} publish", context=parent, kind=trace.SpanKind.PRODUCER,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject},
    ) as span:
        inject_context(headers)
        yield span


@contextmanager
def consumer_span(
    name: str, subject: str, message_headers: Sequence[Mapping[str, str] | None]
) -> Iterator[trace.Span]:
    """A CONSUMER span for handling one message or a batch of them: a child of the first message's trace context
    (so the trace of a request goes on into its consumers) and linked to every message's context (a batch mixes
    the traces of many requests). Whatever the handler publishes or calls inside it continues the trace."""
    contexts = [c for c in (extract_context(h) for h in message_headers) if c is not None]
    links = [trace.Link(trace.get_current_span(c).get_span_context()) for c in contexts[:_MAX_LINKS]]
    with _tracer.start_as_current_span(
        name, context=contexts[0] if contexts else otel_context.Context(), kind=trace.SpanKind.CONSUMER,
        links=links if len(links) > 1 else None,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject,
                    "messaging.batch.message_count": len(message_headers)},
    ) as span:
        yield span


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span, when there is one."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
