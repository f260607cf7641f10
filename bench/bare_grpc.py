"""The bare gRPC limit: a ``grpc.aio`` server that parses each ``StreamEventsRequest`` and answers an empty ack.

No authentication, validation, JetStream or interceptors: what one Python process can do with the same
messages on this machine. Run in its own process by the benchmark: ``python -m bench.bare_grpc PORT``.
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from bench.grpc_driver import CHANNEL_OPTIONS
from billing.ingest.v1 import ingest_pb2, ingest_pb2_grpc


class BareIngest(ingest_pb2_grpc.IngestServiceServicer):
    async def StreamEvents(self, request_iterator, context):  # noqa: N802 - gRPC method name
        async for request in request_iterator:  # deserialised by grpc into StreamEventsRequest: the parse
            yield ingest_pb2.StreamEventsResponse(sequence=request.sequence)


async def serve(port: int) -> None:
    server = grpc.aio.server(options=CHANNEL_OPTIONS)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(BareIngest(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"bare gRPC server listening on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
