"""Prometheus metrics (prometheus-client's default registry).

Counted where things happen: webhooks by answer status (gateway), events by
module and outcome and apply latency (worker). Gauges that describe state —
queue backlog, dead letters kept, watermark lag — are read when scraped.
``billsync run`` serves all of them at ``/metrics``; ``billsync worker`` serves
its own on ``BILLSYNC_METRICS_PORT``. Under gunicorn with several processes set
``PROMETHEUS_MULTIPROC_DIR`` and the gateway aggregates its processes.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from worker.apply import Outcome

__all__ = [
    "APPLY_SECONDS",
    "DEAD_LETTERS",
    "EVENTS",
    "QUEUE_BACKLOG",
    "WATERMARK_LAG",
    "WEBHOOKS",
    "count_outcomes",
]

WEBHOOKS = Counter(
    "billsync_webhooks_received", "Webhook requests by HTTP status answered.", ["status"]
)
EVENTS = Counter(
    "billsync_events",
    "Events handled by the worker, by module and outcome "
    "(applied, refused, stale, duplicate, parked, skipped, dead_lettered).",
    ["module", "outcome"],
)
APPLY_SECONDS = Histogram(
    "billsync_apply_batch_seconds",
    "Time to apply and commit one batch.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_BACKLOG = Gauge("billsync_queue_backlog", "Messages waiting in a queue (scraped).", ["queue"])
DEAD_LETTERS = Gauge("billsync_dead_letters", "Dead letters kept, awaiting replay (scraped).")
WATERMARK_LAG = Gauge(
    "billsync_watermark_lag_seconds",
    "Now minus the module's pull watermark (scraped).",
    ["integration_id", "module"],
)
DATABASE_OUTAGES = Counter(
    "billsync_database_outages",
    "Times a worker found the database unavailable and held its batch until it answered.",
)
DATABASE_OUTAGE_SECONDS = Counter(
    "billsync_database_outage_seconds",
    "Seconds workers held their batches waiting for the database (counted at recovery).",
)


def count_outcomes(outcomes: Sequence[Outcome]) -> None:
    for outcome in outcomes:
        EVENTS.labels(outcome.module, outcome.status).inc()
