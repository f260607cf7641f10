"""Prometheus counters of the event consumer (served with the runtime's metrics on METERING_METRICS_PORT)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_STORED = Counter("billing_metering_events_stored_total", "Events stored and folded into usage (new ones).")
EVENTS_DUPLICATE = Counter(
    "billing_metering_events_duplicate_total", "Events received again and dropped by (project, event_id)."
)
BATCHES_DEAD_LETTERED = Counter(
    "billing_metering_batches_dead_lettered_total", "Event batches sent to the dead-letter stream.", ["reason"]
)
CONSUMER_ERRORS = Counter(
    "billing_metering_consumer_errors_total", "Consumer failures that will be retried.", ["kind"]
)
STORE_SECONDS = Histogram(
    "billing_metering_store_seconds",
    "Time to store one transaction of event batches.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BACKLOG = Gauge(
    "billing_metering_consumer_backlog_messages",
    "Event batch messages in JetStream the consumer has not finished: waiting to be delivered, or delivered and "
    "not yet acknowledged. Sampled every few seconds; a backlog that keeps growing means metering is behind.",
    ["consumer", "state"],
)
ALERTS_FIRED = Counter("billing_metering_alerts_fired_total", "Alert levels fired (each once per period).", ["kind"])
ALERT_EVALUATION_ERRORS = Counter(
    "billing_metering_alert_evaluation_errors_total",
    "Alert evaluations that failed and will be retried by the sweep.",
    ["stage"],
)
