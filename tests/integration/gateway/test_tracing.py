"""One trace from a REST request to the events being stored: gateway (HTTP) -> ingest (gRPC IngestEvents) ->
the JetStream publish (traceparent in the message's headers) -> metering's consumer storing them."""

from __future__ import annotations

import secrets

from opentelemetry.trace import SpanKind

from tests.conftest import FINISHED_SPANS
from tests.integration.gateway.conftest import eventually


def _hex(trace_id: int) -> str:
    return format(trace_id, "032x")


async def test_one_trace_spans_rest_ingest_jetstream_and_metering(metering, key_holder):
    FINISHED_SPANS.clear()
    event_id = f"traced-{secrets.token_hex(4)}"
    response = await key_holder.send({"metricName": "api_calls", "metricValue": 1, "idempotencyKey": event_id})
    assert response.status_code == 202, response.text

    def spans():
        return FINISHED_SPANS.get_finished_spans()

    http = next(s for s in spans() if s.kind == SpanKind.SERVER and s.name.startswith("POST /api/v1/events"))
    trace_id = http.context.trace_id
    in_trace = [s for s in spans() if s.context.trace_id == trace_id]
    rpc = next(s for s in in_trace
               if s.kind == SpanKind.SERVER and s.name == "/billing.ingest.v1.IngestService/IngestEvents")
    publish = next(s for s in in_trace
                   if s.kind == SpanKind.PRODUCER and s.name == "billing.ingest.v1.event_batch.accepted publish")
    assert publish.parent is not None and publish.parent.span_id == rpc.context.span_id, "published inside the RPC"

    async def stored():
        return [s for s in spans() if s.kind == SpanKind.CONSUMER and s.name == "metering store events"
                and s.context.trace_id == trace_id]

    (store,) = await eventually(stored, what="metering to store the traced batch")
    assert store.parent is not None and store.parent.span_id == publish.context.span_id, \
        "metering continues the trace from the message's traceparent header"
    assert store.parent.is_remote
    assert store.status.is_ok and store.attributes["billing.events"] >= 1
    assert {_hex(s.context.trace_id) for s in (http, rpc, publish, store)} == {_hex(trace_id)}
