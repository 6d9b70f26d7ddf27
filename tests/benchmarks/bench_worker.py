"""Worker: `billsync worker` draining realistic events from RabbitMQ into PostgreSQL.

    python -m tests.benchmarks.bench_worker [--events 20000] [--per-event 2000]

The events (``workload.realistic``: projects, tasks, approved billable time logs, 5 %
updates) are queued first, untimed; then a `billsync worker` process starts, and the
time runs from its consumer appearing on billsync.apply to the last event settled
(its activity tally, which the worker commits with the batch). Figures, events/s:
  worker      `billsync worker`: decode, dedupe, apply under the sync rules, commit, ack
  raw upsert  the same rows as bare multi-row INSERT … ON CONFLICT DO UPDATE, one per
              table and batch of 200 events, one transaction per batch (no dedupe,
              rules, relations or bookkeeping: the ceiling; a baseline)
  per-event   apply_batch of one event per transaction, on the first events (a baseline)
Targets: worker ≥ 5,000/s, ≥ 0.25 × raw upsert, ≥ 10 × per-event.
Needs PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.dialects.postgresql import insert

from tests.benchmarks.common import (
    Tenant,
    drain,
    new_tenant,
    reset_queues,
    settings_for,
    standalone,
    temporary_database,
)
from tests.benchmarks.report import FULL, Figure, Row, Target
from tests.benchmarks.workload import queue_messages, realistic
from tests.events import Event
from worker.db import IntegrationActivity, make_sessionmaker, migrate
from worker.sync import RowContext, spec_for
from worker.sync.apply import apply_batch
from worker.sync.columns import event_row

BATCH = 200
RATE, RAW_RATIO, PER_EVENT_RATIO = 5000, 0.25, 10


def raw_upsert(engine: Engine, tenant: Tenant, events: Sequence[Event]) -> float:
    """Events/s of a bare batched upsert of the events' rows (built untimed)."""
    context = RowContext(
        tenant.organization_id,
        tenant.integration_id,
        None,
        modules=frozenset({"projects", "tasks", "timesheets"}),
    )
    messages = queue_messages(list(events), tenant.integration_id)
    batches: list[dict[Any, dict[str, dict[str, Any]]]] = []
    for start in range(0, len(messages), BATCH):
        tables: dict[Any, dict[str, dict[str, Any]]] = {}
        for queued in messages[start : start + BATCH]:
            spec = spec_for(queued.event.module)
            # Newest last: one row per record, as ON CONFLICT needs within a statement.
            tables.setdefault(spec.model, {})[queued.event.data.id] = event_row(
                spec, queued.event, context
            )
        batches.append(tables)

    started = time.perf_counter()
    for tables in batches:
        with engine.begin() as connection:
            for model, rows in tables.items():
                stmt = insert(model)
                columns = next(iter(rows.values())).keys() - {"integration_id", "source_id"}
                stmt = stmt.on_conflict_do_update(
                    index_elements=["integration_id", "source_id"],
                    set_={c: stmt.excluded[c] for c in columns},
                )
                # RETURNING makes SQLAlchemy send multi-row VALUES, as apply does.
                connection.execute(stmt.returning(model.id), list(rows.values()))
    return len(messages) / (time.perf_counter() - started)


def per_event(engine: Engine, tenant: Tenant, events: Sequence[Event]) -> float:
    """Events/s of apply_batch with one event per transaction."""
    sessions = make_sessionmaker(engine)
    messages = queue_messages(list(events), tenant.integration_id)
    started = time.perf_counter()
    for one in messages:
        with sessions.begin() as session:
            apply_batch(session, [one])
    return len(messages) / (time.perf_counter() - started)


def measure(events: int, per_event_events: int) -> list[Row]:
    workload = realistic(events, prefix="w-")
    with temporary_database() as database_url:
        settings = settings_for(database_url)
        engine = create_engine(database_url)
        try:
            migrate.upgrade_schema(engine)
            tenants = [new_tenant(engine, settings) for _ in range(3)]
            messages = queue_messages(workload, tenants[0].integration_id)
            drained = drain(engine, database_url, settings, tenants[0], messages)
            raw = raw_upsert(engine, tenants[1], workload)
            one_each = per_event(engine, tenants[2], workload[:per_event_events])
            _check_applied(engine, tenants[0])
        finally:
            engine.dispose()
        reset_queues(settings)
    return [
        Row(
            key="worker",
            what=f"`billsync worker` draining {events:,} realistic events, RabbitMQ → PostgreSQL",
            figures=[
                Figure("worker_eps", "", drained.rate, "events/s"),
                Figure("raw_eps", "raw batched upsert:", raw, "events/s", baseline=True),
                Figure("per_event_eps", "per-event:", one_each, "events/s", baseline=True),
            ],
            targets=[
                Target("", drained.rate, ">=", RATE, "events/s"),
                Target("/ raw", drained.rate / raw, ">=", RAW_RATIO, "×"),
                Target("/ per-event", drained.rate / one_each, ">=", PER_EVENT_RATIO, "×"),
            ],
            ratios={"/ raw": drained.rate / raw, "/ per-event": drained.rate / one_each},
            params={
                "events": events,
                "per_event_events": per_event_events,
                "seconds": round(drained.seconds, 3),
            },
        )
    ]


def _check_applied(engine: Engine, tenant: Tenant) -> None:
    """The figure counts applied and refused events: none of these may be refused."""
    with engine.connect() as connection:
        refused = connection.scalar(
            select(func.coalesce(func.sum(IntegrationActivity.refused), 0)).where(
                IntegrationActivity.integration_id == tenant.integration_id
            )
        )
    if refused:
        raise RuntimeError(f"the worker refused {refused} of the realistic events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=FULL.worker_events)
    parser.add_argument("--per-event", type=int, default=FULL.per_event_events)
    args = parser.parse_args()
    standalone("worker", lambda: measure(args.events, args.per_event))


if __name__ == "__main__":
    main()
