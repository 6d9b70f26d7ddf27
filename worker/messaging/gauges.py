"""What ``/metrics`` reads when scraped: queue backlog, dead letters kept, watermark lag.

The same in the gateway and the worker; ``billsync worker`` serves its own on
``BILLSYNC_METRICS_PORT`` (:func:`serve_worker_metrics`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from worker.db import DeadLetter, SyncCursor, utcnow
from worker.messaging.publisher import Publisher
from worker.messaging.topology import APPLY_QUEUE, DEAD_LETTER_QUEUE, build_topology
from worker.metrics import registry_with_state
from worker.settings import Settings

__all__ = ["MetricsServer", "StateCollector", "serve_worker_metrics"]

log = logging.getLogger(__name__)


class StateCollector(Collector):
    """Backlog, dead letters and watermark lag, read at each scrape.

    A value that cannot be read is left out (unknown, not zero): the backlog while
    the broker cannot be asked, the database's figures while it is unreachable — the
    scrape still answers, with the outage counters that matter most then.
    """

    def __init__(
        self, sessions: sessionmaker[Session], queue_depth: Callable[[str], int | None]
    ) -> None:
        self._sessions = sessions
        self._queue_depth = queue_depth

    def collect(self) -> Iterable[Metric]:
        backlog = GaugeMetricFamily(
            "billsync_queue_backlog", "Messages waiting in a queue (scraped).", labels=["queue"]
        )
        for queue in (APPLY_QUEUE, DEAD_LETTER_QUEUE):
            depth = self._queue_depth(queue)
            if depth is not None:
                backlog.add_metric([queue], depth)
        yield backlog
        try:
            yield from self._database_state()
        except SQLAlchemyError as exc:
            log.info("database figures left out of the scrape: %s", exc)

    def _database_state(self) -> list[Metric]:
        now = utcnow()
        with self._sessions() as session:
            kept = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
            watermarks = session.execute(
                select(SyncCursor.integration_id, SyncCursor.module, SyncCursor.watermark).where(
                    SyncCursor.watermark.is_not(None)
                )
            ).all()
        dead = GaugeMetricFamily(
            "billsync_dead_letters", "Dead letters kept, awaiting replay (scraped).", value=kept
        )
        lag = GaugeMetricFamily(
            "billsync_watermark_lag_seconds",
            "Now minus the module's pull watermark (scraped).",
            labels=["integration_id", "module"],
        )
        for integration_id, module, watermark in watermarks:
            if watermark is not None:  # filtered in the query; the column is nullable
                lag.add_metric([integration_id, module], (now - watermark).total_seconds())
        return [dead, lag]


@dataclass
class MetricsServer:
    """A ``/metrics`` HTTP server in a thread, with the publisher it asks the broker by."""

    server: WSGIServer
    thread: Thread
    publisher: Publisher

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
        self.publisher.close()


def serve_worker_metrics(settings: Settings, sessions: sessionmaker[Session]) -> MetricsServer:
    """``billsync worker``'s ``/metrics`` on ``BILLSYNC_METRICS_PORT``: its counters and
    the same state the gateway shows (with a publisher of its own to ask the broker)."""
    publisher = Publisher(settings, build_topology(settings))
    state = StateCollector(sessions, publisher.queue_depth)
    server, thread = start_http_server(
        settings.metrics_port, addr=settings.host, registry=registry_with_state(state)
    )
    return MetricsServer(server, thread, publisher)
