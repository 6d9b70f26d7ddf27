"""Apply throughput into PostgreSQL, against its baselines measured in the same run.

    python -m tests.benchmarks.bench_apply [--events 20000]

Prints events/s for:
  consumer      the worker draining RabbitMQ into PostgreSQL (decode, apply, commit, ack)
  batched       apply_batch, 200 events per transaction (the worker's database part)
  per-event     one transaction per event (the naive consumer; a baseline)
  raw upsert    a bare multi-row INSERT … ON CONFLICT DO UPDATE of the same rows,
                with no dedupe or version check (the ceiling; a baseline)
and the target ratios (batched ≥ 10 × per-event, ≥ 0.25 × raw).
Needs PostgreSQL and RabbitMQ, found as the test suite finds them.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects.postgresql import insert

from schemas import Module, QueueMessage, routing_key
from tests import servers
from tests.benchmarks.common import temporary_database
from tests.events import message, project, task
from tests.support import BrokerProbe, Recorder, wait_until
from worker.cli.runtime import ConsumerThread, build_consumer
from worker.db import Integration, Organization, Task, make_sessionmaker, migrate
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings
from worker.sync import RowContext, spec_for
from worker.sync.apply import apply_batch
from worker.sync.columns import event_row

BATCH = 200


def _events(integration_id: str, count: int, offset: int) -> list[QueueMessage]:
    base = datetime(2026, 11, 24, tzinfo=UTC)
    return [
        message(
            task(
                f"T{offset + n}",
                f"P{n % 50}",
                name=f"Task {n}",
                at=(base + timedelta(seconds=n)).isoformat(),
            ),
            integration_id,
            f"e-{offset + n}",
        )
        for n in range(count)
    ]


def _integration(engine: Engine) -> str:
    """A connected integration whose 50 projects are synced (tasks need their project)."""
    sessions = make_sessionmaker(engine)
    org_id, integration_id = str(uuid.uuid4()), str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(Organization(id=org_id, name="bench"))
        session.flush()
        session.add(
            Integration(
                id=integration_id,
                organization_id=org_id,
                portal_id=integration_id,
                status="active",
                modules=["projects"],
            )
        )
    with sessions.begin() as session:
        apply_batch(
            session,
            [message(project(f"P{n}"), integration_id, f"p-{n}") for n in range(50)],
        )
    return integration_id


def _timed(run: Callable[[], None], events: int) -> float:
    started = time.perf_counter()
    run()
    return events / (time.perf_counter() - started)


def _drain(messages: Sequence[QueueMessage], sessions: Any, engine: Engine) -> float:
    """Queue ``messages`` on RabbitMQ (untimed), then time a worker applying them all."""
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
            pika.BasicProperties(content_type="application/json", delivery_mode=2),
        )
    connection.close()
    wait_until(lambda: probe.depth() == len(messages), timeout=120)

    applied = Recorder()
    started = time.perf_counter()
    thread = ConsumerThread(build_consumer(settings, sessions, hooks=[applied]))
    thread.start()
    wait_until(lambda: applied.seen >= len(messages), timeout=600, interval=0.01)
    rate = len(messages) / (time.perf_counter() - started)
    thread.stop()
    return rate


def _measure(engine: Engine, n: int, per_event_n: int) -> dict[str, float]:
    """Events/s of the consumer, batched apply, per-event apply and raw upsert."""
    migrate.upgrade_schema(engine)
    sessions = make_sessionmaker(engine)

    def batched(messages: Sequence[QueueMessage]) -> None:
        for start in range(0, len(messages), BATCH):
            with sessions.begin() as session:
                apply_batch(session, messages[start : start + BATCH])

    def per_event(messages: Sequence[QueueMessage]) -> None:
        for one in messages:
            with sessions.begin() as session:
                apply_batch(session, [one])

    def raw(rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), BATCH):
            with engine.begin() as connection:
                stmt = insert(Task)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["integration_id", "source_id"],
                    set_={c: stmt.excluded[c] for c in ("name", "source_modified_at", "payload")},
                )
                # RETURNING makes SQLAlchemy batch rows into multi-row VALUES, as apply does.
                connection.execute(stmt.returning(Task.id), rows[start : start + BATCH])

    batched_events = _events(_integration(engine), n, 0)
    per_event_events = _events(_integration(engine), per_event_n, 0)
    raw_id = _integration(engine)
    with sessions() as session:
        org_id = session.get_one(Integration, raw_id).organization_id
    tasks = spec_for(Module.TASKS)
    raw_rows = [
        event_row(tasks, m.event, RowContext(org_id, raw_id, None)) for m in _events(raw_id, n, 0)
    ]
    consumer_events = _events(_integration(engine), n, 0)
    figures = {
        "consumer": _drain(consumer_events, sessions, engine),
        "batched": _timed(lambda: batched(batched_events), n),
        "per-event": _timed(lambda: per_event(per_event_events), per_event_n),
        "raw upsert": _timed(lambda: raw(raw_rows), n),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    n = args.events

    per_event_n = max(1000, n // 10)
    with temporary_database() as url:
        engine = create_engine(url)
        try:
            figures = _measure(engine, n, per_event_n)
        finally:
            engine.dispose()

    print(f"apply into PostgreSQL, {n} task events (per-event: {per_event_n})")
    for label, rate in figures.items():
        print(f"  {label:<12} {rate:>10,.0f} events/s")
    print(
        f"  batched / per-event  = {figures['batched'] / figures['per-event']:.1f}x  (target >= 10)"
    )
    ratio = figures["batched"] / figures["raw upsert"]
    print(f"  batched / raw upsert = {ratio:.2f}x (target >= 0.25)")


if __name__ == "__main__":
    main()
