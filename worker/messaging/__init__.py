"""The broker side: connections (RabbitMQ with confirms, or the embedded SQLite
transport), the topology, durable publishing, the apply consumer that feeds
``worker.sync`` and its hooks (the metrics, the log, whatever a caller adds), dead
letters (archive, find, edit, replay) and the gauges ``/metrics`` reads from the broker
and the database."""

from worker.messaging.connection import broker_connection
from worker.messaging.consumer import ApplyConsumer
from worker.messaging.dead_letters import (
    DeadLetterArchiver,
    DeadLetterFilter,
    IntegrationUnknown,
    InvalidEdit,
    count,
    dead_letter_detail,
    dead_letter_view,
    delete_matching,
    edit,
    find,
    replay,
)
from worker.messaging.embedded import recover_in_flight
from worker.messaging.gauges import StateCollector, serve_worker_metrics
from worker.messaging.hooks import Hooks, LoggingHooks, MetricsHooks, default_hooks
from worker.messaging.publisher import Publisher
from worker.messaging.topology import APPLY_QUEUE, DEAD_LETTER_QUEUE, build_topology

__all__ = [
    "APPLY_QUEUE",
    "ApplyConsumer",
    "DEAD_LETTER_QUEUE",
    "DeadLetterArchiver",
    "DeadLetterFilter",
    "Hooks",
    "IntegrationUnknown",
    "InvalidEdit",
    "LoggingHooks",
    "MetricsHooks",
    "Publisher",
    "StateCollector",
    "broker_connection",
    "build_topology",
    "count",
    "dead_letter_detail",
    "dead_letter_view",
    "default_hooks",
    "delete_matching",
    "edit",
    "find",
    "recover_in_flight",
    "replay",
    "serve_worker_metrics",
]
