"""Trace context in message headers: what a consumer's span continues and links to."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from billing_runtime.tracing import consumer_span, extract_context, inject_context, producer_span
from tests.conftest import FINISHED_SPANS

tracer = trace.get_tracer("tests")


def _headers_of_a_new_trace() -> dict[str, str]:
    with tracer.start_as_current_span("elsewhere"):
        return dict(inject_context({"Nats-Msg-Id": "x"}))


def test_headers_without_a_traceparent_carry_no_context():
    assert extract_context(None) is None
    assert extract_context({}) is None
    assert extract_context({"Nats-Msg-Id": "x"}) is None
    assert extract_context({"traceparent": "not-a-traceparent"}) is None
    assert extract_context(_headers_of_a_new_trace()) is not None


def test_a_batch_span_continues_its_first_messages_trace_and_links_every_message():
    first, second = _headers_of_a_new_trace(), _headers_of_a_new_trace()
    with consumer_span("d process", "s", [None, first, second]) as span:
        context = span.get_span_context()
    first_trace = trace.get_current_span(extract_context(first)).get_span_context()
    second_trace = trace.get_current_span(extract_context(second)).get_span_context()
    assert context.trace_id == first_trace.trace_id != second_trace.trace_id
    finished = next(s for s in FINISHED_SPANS.get_finished_spans() if s.context.span_id == context.span_id)
    assert finished.kind == SpanKind.CONSUMER and finished.parent.span_id == first_trace.span_id
    assert {link.context.span_id for link in finished.links} == {first_trace.span_id, second_trace.span_id}
    assert finished.attributes["messaging.batch.message_count"] == 3


def test_a_message_without_context_starts_a_new_trace_not_the_callers():
    with tracer.start_as_current_span("the loop") as outer, consumer_span("d process", "s", [None]) as span:
        assert span.get_span_context().trace_id != outer.get_span_context().trace_id


def test_a_producer_span_continues_the_trace_its_headers_carry_and_then_carries_itself():
    headers = _headers_of_a_new_trace()
    written = trace.get_current_span(extract_context(headers)).get_span_context()
    with tracer.start_as_current_span("the relay"), producer_span("s", headers) as span:
        pass
    assert span.get_span_context().trace_id == written.trace_id
    carried = trace.get_current_span(extract_context(headers)).get_span_context()
    assert carried.span_id == span.get_span_context().span_id
    assert headers["Nats-Msg-Id"] == "x"
