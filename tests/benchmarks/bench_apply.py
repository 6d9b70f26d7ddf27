"""Apply throughput into PostgreSQL, against its baselines measured in the same run.

    python -m tests.benchmarks.bench_apply [--events 20000] [--rss] [--consumer-only]

Prints events/s for:
  consumer      the worker draining RabbitMQ into PostgreSQL (decode, apply, commit, ack)
  batched       apply_batch, 200 events per transaction (the worker's database part)
  per-event     one transaction per event (the naive consumer; a baseline)
  raw upsert    a bare multi-row INSERT … ON CONFLICT DO UPDATE of the same rows,
                with no dedupe or version check (the ceiling; a baseline)
and the target ratios (batched ≥ 10 × per-event, ≥ 0.25 × raw).

The events are a realistic stream, one per integration: projects with a primary
client (2 %), their tasks (18 %), approved billable time logs on those tasks or on
the project (75 %), and updates of records sent earlier, each a newer version (5 %).
``--rss`` also prints the process's resident memory while the consumer drains (the
worker runs in a thread of this process; the stream is published lazily, so what
grows is the worker's); ``--consumer-only`` skips the three apply baselines (for
long RSS runs and profiling). Needs PostgreSQL and RabbitMQ, found as the test suite
finds them.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects.postgresql import insert

from schemas import Module, QueueMessage, routing_key
from tests import servers
from tests.benchmarks.common import bench_integration, temporary_database
from tests.events import Event, message, project, task, timesheet
from tests.support import BrokerProbe, wait_until
from worker.cli.runtime import ConsumerThread, build_consumer
from worker.db import Integration, SyncedRecord, make_sessionmaker, migrate
from worker.messaging import Hooks
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings
from worker.sync import Outcome, RowContext, refresh_statistics, spec_for
from worker.sync.apply import apply_batch
from worker.sync.columns import event_row

BATCH = 200
CLIENTS = 8
_KEYS = ("organization_id", "integration_id", "source_id")
OWNERS = 12


@dataclass
class _Stream:
    """State of one integration's realistic stream: what was sent, to update it later."""

    rng: random.Random
    sent: int = 0
    projects: list[str] = field(default_factory=list)
    tasks: list[tuple[str, str]] = field(default_factory=list)  # (task, project)
    # Recently sent records, rebuilt with a newer version for an update.
    recent: list[Callable[[str], Event]] = field(default_factory=list)


# The modules of the integration the events go to (all its time logs unbilled).
MODULES = ("projects", "timesheets")


def _client(k: int) -> dict[str, Any]:
    return {
        "id": f"88{k:06d}",
        "name": f"Client {k}",
        "email": f"ap@client{k}.example",
        "currency_code": "USD",
    }


def _owner(k: int) -> dict[str, Any]:
    return {"id": f"7{k:08d}", "name": f"Staff {k}", "email": f"staff{k}@example.com"}


def _next_event(stream: _Stream) -> Event:
    """The next event of the stream (``at`` is its position: versions only move forward)."""
    rng, n = stream.rng, stream.sent
    at = (datetime(2026, 11, 24, tzinfo=UTC) + timedelta(seconds=n)).isoformat()
    roll = rng.random()
    if roll < 0.05 and stream.recent:
        return rng.choice(stream.recent)(at)
    build: Callable[[str], Event]
    if not stream.projects or roll < 0.07:
        pid = f"2447529{n:012d}"
        client = _client(rng.randrange(CLIENTS))

        def build(at: str, pid: str = pid, client: dict[str, Any] = client) -> Event:
            return project(pid, client=client, name=f"Project {pid[-5:]} {at[11:19]}", at=at)

        stream.projects.append(pid)
        del stream.projects[:-6]  # work goes on a few projects at a time
    elif roll < 0.25 or not stream.tasks:
        tid, pid = f"1000{n:012d}", rng.choice(stream.projects)

        def build(at: str, tid: str = tid, pid: str = pid) -> Event:
            return task(tid, pid, name=f"Task {tid[-5:]} {at[11:19]}", at=at, status="open")

        stream.tasks.append((tid, pid))
        del stream.tasks[:-60]
    else:
        lid = f"3000{n:012d}"
        on_task = rng.random() < 0.8
        tid, pid = rng.choice(stream.tasks) if on_task else (None, rng.choice(stream.projects))
        owner = _owner(rng.randrange(OWNERS))
        day = f"2026-11-{1 + n % 24:02d}"

        def build(
            at: str,
            lid: str = lid,
            pid: str = pid,
            tid: str | None = tid,
            owner: dict[str, Any] = owner,
            day: str = day,
        ) -> Event:
            return timesheet(
                lid, pid, task_id=tid, owner=owner, log_date=day, minutes=15 + len(at) % 7, at=at
            )

    stream.recent.append(build)
    del stream.recent[:-500]
    return build(at)


def realistic_events(integration_id: str, count: int, seed: int = 1) -> Iterator[QueueMessage]:
    """``count`` messages of one integration's realistic stream, built as they are needed."""
    stream = _Stream(random.Random(seed))
    for n in range(count):
        stream.sent = n
        yield message(_next_event(stream), integration_id, f"e-{n}")


def _timed(run: Callable[[], None], events: int) -> float:
    started = time.perf_counter()
    run()
    return events / (time.perf_counter() - started)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Counted(Hooks):
    """Counts the events applied, and keeps nothing else (the worker's memory is measured)."""

    def __init__(self) -> None:
        self._seen = 0
        self._lock = threading.Lock()

    def after_apply(
        self, messages: Sequence[QueueMessage], outcomes: Sequence[Outcome], seconds: float
    ) -> None:
        with self._lock:
            self._seen += len(outcomes)

    @property
    def seen(self) -> int:
        with self._lock:
            return self._seen


@dataclass
class _Drained:
    rate: float
    rss: list[tuple[int, float]]  # (events applied, MB) while draining


def _drain(messages: Iterable[QueueMessage], count: int, sessions: Any, engine: Engine) -> _Drained:
    """Queue ``messages`` on RabbitMQ as billsync's publisher does (untimed), then time a
    worker applying them all."""
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        broker_url=servers.rabbitmq_url(),
    )
    probe = BrokerProbe(settings.broker_url)
    probe.reset()
    Publisher(settings, build_topology(settings)).declare_topology()
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    channel = connection.channel()
    for queued in messages:
        channel.basic_publish(
            "billsync.events",
            routing_key(queued),
            queued.model_dump_json().encode(),
            pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                headers=queued.headers(),
                message_id=queued.event_id,
            ),
        )
    connection.close()
    wait_until(lambda: probe.depth() == count, timeout=300)

    applied = _Counted()
    rss: list[tuple[int, float]] = []
    done = threading.Event()
    thread = ConsumerThread(build_consumer(settings, sessions, hooks=[applied]))
    started = time.perf_counter()
    thread.start()
    while not done.is_set():
        seen = applied.seen
        rss.append((seen, _rss_mb()))
        if seen >= count:
            done.set()
        elif time.perf_counter() - started > 1800:
            raise AssertionError(f"only {seen} of {count} events applied in 30 minutes")
        else:
            time.sleep(0.01)
    rate = count / (time.perf_counter() - started)
    thread.stop()
    return _Drained(rate, rss)


def _raw(engine: Engine, batches: Sequence[Sequence[tuple[type[SyncedRecord], dict[str, Any]]]]):
    """Per batch, one bare multi-row upsert per table (the last row per key)."""
    for rows in batches:
        by_table: dict[type[SyncedRecord], dict[tuple[str, str], dict[str, Any]]] = {}
        for model, row in rows:
            by_table.setdefault(model, {})[(row["integration_id"], row["source_id"])] = row
        with engine.begin() as connection:
            for model, keyed in by_table.items():
                table: Any = model
                stmt = insert(table)
                first = next(iter(keyed.values()))
                stmt = stmt.on_conflict_do_update(
                    index_elements=["integration_id", "source_id"],
                    set_={c: stmt.excluded[c] for c in first if c not in _KEYS},
                )
                # RETURNING makes SQLAlchemy batch rows into multi-row VALUES, as apply did.
                connection.execute(stmt.returning(table.id), list(keyed.values()))


def _raw_rows(
    engine: Engine, messages: Sequence[QueueMessage]
) -> list[list[tuple[type[SyncedRecord], dict[str, Any]]]]:
    sessions = make_sessionmaker(engine)
    integration_id = messages[0].integration_id
    with sessions() as session:
        org_id = session.get_one(Integration, integration_id).organization_id
    ctx = RowContext(org_id, integration_id, None, frozenset({"projects", "timesheets"}))
    rows = []
    for m in messages:
        spec = spec_for(Module(m.event.module))
        rows.append((spec.model, event_row(spec, m.event, ctx)))
    return [rows[start : start + BATCH] for start in range(0, len(rows), BATCH)]


def _measure(engine: Engine, n: int, per_event_n: int, consumer_only: bool) -> _Figures:
    """Events/s of the consumer, batched apply, per-event apply and raw upsert."""
    migrate.upgrade_schema(engine)
    sessions = make_sessionmaker(engine)

    # Each, after a commit, does what the worker does beside it (here inline): ANALYZE
    # a table once it grew enough.
    def batched(messages: Sequence[QueueMessage]) -> None:
        for start in range(0, len(messages), BATCH):
            with sessions.begin() as session:
                apply_batch(session, messages[start : start + BATCH])
            refresh_statistics(sessions.begin)

    def per_event(messages: Sequence[QueueMessage]) -> None:
        for one in messages:
            with sessions.begin() as session:
                apply_batch(session, [one])
            refresh_statistics(sessions.begin)

    drained = _drain(
        realistic_events(bench_integration(engine, MODULES), n),
        n,
        sessions,
        engine,
    )
    figures = _Figures({"consumer": drained.rate}, drained.rss)
    if consumer_only:
        return figures
    batched_events = list(realistic_events(bench_integration(engine, MODULES), n))
    per_event_events = list(realistic_events(bench_integration(engine, MODULES), per_event_n))
    raw_batches = _raw_rows(engine, list(realistic_events(bench_integration(engine, MODULES), n)))
    figures.rates["batched"] = _timed(lambda: batched(batched_events), n)
    figures.rates["per-event"] = _timed(lambda: per_event(per_event_events), per_event_n)
    figures.rates["raw upsert"] = _timed(lambda: _raw(engine, raw_batches), n)
    return figures


@dataclass
class _Figures:
    rates: dict[str, float]
    rss: list[tuple[int, float]]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rss", action="store_true", help="print the RSS while draining")
    parser.add_argument(
        "--consumer-only", action="store_true", help="measure only the consumer draining"
    )
    args = parser.parse_args()
    n = args.events

    per_event_n = max(1000, n // 10)
    with temporary_database() as url:
        engine = create_engine(url)
        try:
            figures = _measure(engine, n, per_event_n, args.consumer_only)
        finally:
            engine.dispose()
            servers.stop_all()  # the vhost made for the run

    print(f"apply into PostgreSQL, {n} events of a realistic mix (per-event: {per_event_n})")
    rates = figures.rates
    for label, rate in rates.items():
        print(f"  {label:<12} {rate:>10,.0f} events/s")
    if not args.consumer_only:
        print(
            f"  batched / per-event  = {rates['batched'] / rates['per-event']:.1f}x  (target >= 10)"
        )
        ratio = rates["batched"] / rates["raw upsert"]
        print(f"  batched / raw upsert = {ratio:.2f}x (target >= 0.25)")
    if args.rss:
        _print_rss(figures.rss, n)


def _print_rss(samples: list[tuple[int, float]], n: int) -> None:
    """RSS after each tenth of the events applied: flat means the worker keeps nothing."""
    marks = []
    for tenth in range(1, 11):
        at = next((mb for seen, mb in samples if seen >= n * tenth // 10), samples[-1][1])
        marks.append(f"{at:.0f}")
    peak = max(mb for _, mb in samples)
    print(f"  consumer RSS MB per tenth applied: {' '.join(marks)} (peak {peak:.0f})")


if __name__ == "__main__":
    main()
