"""Prometheus metrics every service exposes on its own port (``<PREFIX>_METRICS_PORT``).

RPC metrics use the names of go-grpc-prometheus (``grpc_server_handled_total`` ...), so the usual gRPC
dashboards and alerts work unchanged.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import Counter, Gauge, Histogram, start_http_server

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by outcome.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds", "Time to handle an RPC.", ["grpc_service", "grpc_method"], buckets=_LATENCY_BUCKETS
)
HTTP_REQUESTS = Counter("http_server_requests_total", "HTTP requests answered.", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "http_server_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
SERVING = Gauge("billing_service_serving", "1 while gRPC health reports SERVING.")
DEPENDENCY_UP = Gauge("billing_dependency_up", "1 while the dependency answers its check.", ["dependency"])
OUTBOX_PUBLISHED = Counter("billing_outbox_published_total", "Outbox events published to JetStream.")
OUTBOX_FAILURES = Counter("billing_outbox_relay_failures_total", "Outbox relay rounds that failed and will retry.")
MIGRATION_FAILURES = Counter(
    "billing_migration_failures_total",
    "Migrations that failed once connected (bad SQL, a lock timeout...), by schema; start-up retries them.",
    ["schema"],
)
# Counted once the recording transaction committed: by subject, what the platform did (invoices issued, payments
# captured or failed, refunds...), whatever service did it. Subjects are the contracts' constants, a bounded set.
OUTBOX_RECORDED = Counter(
    "billing_outbox_events_recorded_total", "Events committed to an outbox, by subject.", ["subject"]
)


def record_rpc(method: str, code: str, seconds: float) -> None:
    """``method`` is the full gRPC path, ``/billing.invoicing.v1.InvoicingService/GetOrganisation``."""
    service, _, name = method.lstrip("/").partition("/")
    RPC_HANDLED.labels(service, name, code).inc()
    RPC_SECONDS.labels(service, name).observe(seconds)


def rpc_recorders(method: str, code: str):
    """The counter and histogram children ``record_rpc`` would update for ``method`` and ``code``, looked up once
    (for hot methods that record thousands of calls a second)."""
    service, _, name = method.lstrip("/").partition("/")
    return RPC_HANDLED.labels(service, name, code), RPC_SECONDS.labels(service, name)


def record_http(method: str, route: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


class MetricsServer:
    """The ``/metrics`` endpoint in a background thread (prometheus_client's own WSGI server)."""

    def __init__(self, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host)
        self.address = f"http://{host}:{self._server.server_port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
