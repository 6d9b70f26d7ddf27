"""Prometheus metrics (prometheus-client).

Counted where things happen: webhooks by answer status (gateway), events by
module and outcome and apply latency (worker). State — queue backlog, dead
letters kept, watermark lag — is read from the broker and the database when
scraped, by ``worker.messaging.gauges``, the same in the gateway and the worker.
``billsync run`` serves everything at ``/metrics``; ``billsync worker`` serves its
own on ``BILLSYNC_METRICS_PORT``.

``billsync gateway`` runs several gunicorn processes, each counting the requests it
answered; a scrape reaches one of them. So the gateway counts in files shared by all
its processes (prometheus-client's multiprocess mode, see
:func:`shared_across_processes`) and every scrape sums them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    values,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "APPLY_SECONDS",
    "BATCH_CONFLICTS",
    "DATABASE_OUTAGES",
    "DATABASE_OUTAGE_SECONDS",
    "EVENTS",
    "MULTIPROCESS_DIR_ENV",
    "WEBHOOKS",
    "mark_worker_dead",
    "registry_with_state",
    "shared_across_processes",
]

log = logging.getLogger(__name__)

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

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
DATABASE_OUTAGES = Counter(
    "billsync_database_outages",
    "Times a worker found the database unavailable and held its batch until it answered.",
)
BATCH_CONFLICTS = Counter(
    "billsync_batch_conflicts",
    "Batches rolled back and applied again at once because another transaction held "
    "what they needed (a deadlock, a serialization failure, a lock that stayed busy).",
)
DATABASE_OUTAGE_SECONDS = Counter(
    "billsync_database_outage_seconds",
    "Seconds workers held their batches waiting for the database (counted at recovery).",
)
_LABELLED = (WEBHOOKS, EVENTS)
_UNLABELLED = (APPLY_SECONDS, BATCH_CONFLICTS, DATABASE_OUTAGES, DATABASE_OUTAGE_SECONDS)


class _Counted(Collector):
    """The counters and histograms: of every process sharing the multiprocess
    directory when there is one (gunicorn), else of this process."""

    def collect(self) -> Iterable[Metric]:
        directory = os.environ.get(MULTIPROCESS_DIR_ENV)
        if not directory:
            yield from REGISTRY.collect()
            return
        shared = multiprocess.MultiProcessCollector(None, path=directory)  # type: ignore[no-untyped-call]
        yield from shared.collect()  # type: ignore[no-untyped-call]


def registry_with_state(state: Collector) -> CollectorRegistry:
    """What ``/metrics`` answers, in the gateway and the worker alike."""
    registry = CollectorRegistry()
    registry.register(_Counted())
    registry.register(state)
    return registry


# -- several processes ------------------------------------------------------------------


@contextmanager
def shared_across_processes() -> Iterator[Path]:
    """Count in files every process forked inside this block shares (gunicorn).

    ``PROMETHEUS_MULTIPROC_DIR`` names the directory, else a temporary one is made
    here and removed at the end. A given directory is emptied first, as
    prometheus-client asks: files left by an earlier run would add to the counters.
    """
    given = os.environ.get(MULTIPROCESS_DIR_ENV)
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="billsync-metrics-"))
    if given:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    _count_in_files()
    owner = os.getpid()
    try:
        yield directory
    finally:
        # gunicorn's workers are forked inside this block and leave it when they exit:
        # only the process that made the directory removes it.
        if not given and os.getpid() == owner:
            shutil.rmtree(directory, ignore_errors=True)


def _count_in_files() -> None:
    """Switch the metrics already made to per-process files.

    prometheus-client picks where values live when it is imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; the ``billsync`` command imports it (and makes these
    metrics) before any command runs, so the choice is made again here, before gunicorn
    forks. Labelled metrics make their values per label set, later; the others are
    re-made (prometheus-client has no public call for that).
    """
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for labelled in _LABELLED:
        labelled.clear()
    for metric in _UNLABELLED:
        metric._metric_init()


def mark_worker_dead(_arbiter: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges stop counting (its
    counters stay: what it counted happened)."""
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
