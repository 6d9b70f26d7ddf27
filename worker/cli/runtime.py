"""Wiring the worker from Settings: the pieces `billsync worker` and `run` start."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from worker.messaging import (
    ApplyConsumer,
    DeadLetterArchiver,
    Hooks,
    Publisher,
    broker_connection,
    build_topology,
    default_hooks,
)
from worker.pull import ProgressListener, PullRunner, SyncScheduler
from worker.settings import Settings

__all__ = [
    "ConsumerThread",
    "build_archiver",
    "build_consumer",
    "build_runner",
    "build_scheduler",
]

log = logging.getLogger(__name__)


def build_consumer(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    hooks: Sequence[Hooks] = (),
) -> ApplyConsumer:
    """The apply consumer with the default hooks (metrics, log), then ``hooks``."""
    topology = build_topology(settings)
    return ApplyConsumer(
        broker_connection(settings),
        topology,
        sessions,
        Publisher(settings, topology),
        settings,
        hooks=[*default_hooks(), *hooks],
    )


def build_runner(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    on_progress: ProgressListener | None = None,
) -> PullRunner:
    return PullRunner(
        sessions, Publisher(settings, build_topology(settings)), settings, on_progress=on_progress
    )


def build_scheduler(settings: Settings, sessions: sessionmaker[Session]) -> SyncScheduler:
    return SyncScheduler(build_runner(settings, sessions), sessions, settings)


def build_archiver(settings: Settings, sessions: sessionmaker[Session]) -> DeadLetterArchiver:
    return DeadLetterArchiver(broker_connection(settings), build_topology(settings), sessions)


class ConsumerThread(threading.Thread):
    """Runs a consumer (apply or dead-letter archive) until ``stop()``; reconnects on
    broker errors."""

    def __init__(self, consumer: ApplyConsumer | DeadLetterArchiver) -> None:
        super().__init__(name=f"billsync-{type(consumer).__name__}", daemon=True)
        self.consumer = consumer

    def run(self) -> None:
        try:
            self.consumer.run()
        finally:
            self.consumer.close()

    def stop(self, timeout: float = 10.0) -> None:
        self.consumer.should_stop = True
        self.join(timeout)
