"""Three `billsync worker` processes on one queue, fed conflicting versions of a few records.

Many versions of the same projects, tasks and time logs (deletes among them, some
resent) are shuffled and published in bursts while three real worker processes
consume: each burst is spread over the workers' prefetch windows, so versions of one
record are applied by different workers at the same moment, and the batches of two
workers hold the same keys (and the same new staff users and customers). Once the
queue is drained, the database must hold what the history implies: per record the
newest version (``modified_at``; at the same time a delete wins), a tombstone where
that is a delete; every event in the ledger once, applied, refused or stale once; no
deadlock, nothing dead-lettered.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.events import Event, deleted, message, project, task, timesheet
from tests.processes import BillsyncProcess, billsync_env, spawned
from tests.support import DEAD_LETTER_QUEUE, BrokerProbe, add_integration, wait_until
from worker.db import DeadLetter, ProcessedEvent, Project, SyncError, Task, Timesheet
from worker.messaging.publisher import Publisher
from worker.settings import Settings

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"
WORKERS = 3
START = datetime(2026, 11, 24, 9, tzinfo=UTC)
PROJECTS = 3
TASKS_PER_PROJECT = 2
LOGS_PER_TASK = 2
VERSIONS = 10  # per record
PEOPLE = 5  # time-log owners: new staff users, made by whichever batch sees them first
CLIENTS = 2  # primary clients shared by the projects: customers written by several batches
BURST = 60  # messages published at once: a prefetch window of each worker
# Small batches, a prefetch of one batch: each burst is dealt to all three workers.
WORKER_SETTINGS = {"batch_size": 20, "prefetch": 20, "batch_max_wait_ms": 20}
TABLES: dict[str, Any] = {"projects": Project, "tasks": Task, "timesheets": Timesheet}


@dataclass(frozen=True)
class Version:
    """One published event of a record, as the oracle sees it."""

    module: str
    source_id: str
    modified_at: datetime
    deleted: bool
    label: str | int | None  # project and task name, log minutes


def history(rng: random.Random) -> tuple[list[Event], list[Version]]:
    """VERSIONS versions of every record, a second apart per record and interleaved
    between records; tasks and logs are deleted now and then (and may come back, with
    a newer version); a log's last delete may carry the same time as its newest update
    (the delete wins the tie). Projects are never deleted: a project's delete withdraws
    its children, which would make the oracle depend on the order of application."""
    events: list[Event] = []
    versions: list[Version] = []

    def add(built: Event, module: str, source_id: str, at: datetime, label: Any) -> None:
        events.append(built)
        is_delete = built["action"] == "deleted"
        versions.append(Version(module, source_id, at, is_delete, None if is_delete else label))

    def stamp(at: datetime) -> str:
        return at.isoformat().replace("+00:00", "Z")

    record = 0
    for p in range(PROJECTS):
        pid = f"P{p}"
        client = {"id": f"C{p % CLIENTS}", "name": f"Client {p % CLIENTS}", "currency_code": "USD"}
        record += 1
        for v in range(VERSIONS):
            at = START + timedelta(minutes=v, seconds=record)
            name = f"Project {pid} v{v}"
            add(
                project(pid, name=name, client=client, at=stamp(at), event_id=f"{pid}-v{v}"),
                "projects",
                pid,
                at,
                name,
            )
        for t in range(TASKS_PER_PROJECT):
            tid = f"{pid}-T{t}"
            record += 1
            for v in range(VERSIONS):
                at = START + timedelta(minutes=v, seconds=record)
                name = f"Task {tid} v{v}"
                if rng.random() < 0.2:
                    built = deleted("tasks", tid, pid, at=stamp(at), event_id=f"{tid}-v{v}-del")
                else:
                    built = task(tid, pid, name=name, at=stamp(at), event_id=f"{tid}-v{v}")
                add(built, "tasks", tid, at, name)
            for n in range(LOGS_PER_TASK):
                lid = f"{tid}-L{n}"
                record += 1
                for v in range(VERSIONS):
                    at = START + timedelta(minutes=v, seconds=record)
                    owner = {
                        "id": f"U{(record + v) % PEOPLE}",
                        "name": f"Person {(record + v) % PEOPLE}",
                        "email": f"person{(record + v) % PEOPLE}@example.com",
                    }
                    if rng.random() < 0.2:
                        built = deleted(
                            "timesheets", lid, pid, at=stamp(at), event_id=f"{lid}-v{v}-del"
                        )
                    else:
                        built = timesheet(
                            lid,
                            pid,
                            task_id=tid,
                            minutes=30 + v,
                            owner=owner,
                            at=stamp(at),
                            event_id=f"{lid}-v{v}",
                        )
                    add(built, "timesheets", lid, at, 30 + v)
                if rng.random() < 0.5:  # a delete at the very time of the newest version
                    at = START + timedelta(minutes=VERSIONS - 1, seconds=record)
                    tie = deleted("timesheets", lid, pid, at=stamp(at), event_id=f"{lid}-tie-del")
                    add(tie, "timesheets", lid, at, None)
    return events, versions


def oracle(versions: list[Version]) -> dict[tuple[str, str], Version]:
    """Per record the version that must be stored: the newest, a delete winning a tie."""
    newest: dict[tuple[str, str], Version] = {}
    for version in versions:
        key = (version.module, version.source_id)
        current = newest.get(key)
        if current is None or (version.modified_at, version.deleted) > (
            current.modified_at,
            current.deleted,
        ):
            newest[key] = version
    return newest


def stored(sessions: sessionmaker[Session]) -> dict[tuple[str, str], Version]:
    found = {}
    with sessions() as session:
        for module, table in TABLES.items():
            label = table.minutes if module == "timesheets" else table.name
            rows = session.execute(
                select(table.source_id, table.source_modified_at, table.deleted, label).where(
                    table.integration_id == INTEGRATION
                )
            )
            for source_id, modified_at, is_deleted, value in rows:
                # A tombstone keeps the data of whichever version it replaced: not compared.
                kept = None if is_deleted else value
                found[(module, source_id)] = Version(
                    module, source_id, modified_at, is_deleted, kept
                )
    return found


def ledger(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(
            session.scalars(
                select(ProcessedEvent.event_id).where(ProcessedEvent.integration_id == INTEGRATION)
            )
        )


def deadlocks(engine: Engine) -> int:
    """Deadlocks PostgreSQL detected in the test database so far (its own count)."""
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            connection.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            ).scalar_one()
        )


@pytest.fixture
def workers(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
    publisher: Publisher,
    tmp_path: Path,
) -> Iterator[list[BillsyncProcess]]:
    add_integration(pg_sessions, INTEGRATION)
    publisher.declare_topology()
    env = billsync_env(settings, **WORKER_SETTINGS)
    with ExitStack() as stack:
        started = [
            stack.enter_context(spawned(["worker"], env, tmp_path / f"worker-{n}.log"))
            for n in range(WORKERS)
        ]
        wait_until(lambda: broker.consumers() == WORKERS, timeout=60, interval=0.1)
        yield started


def test_three_worker_processes_applying_conflicting_versions_end_at_the_newest_of_each(
    workers: list[BillsyncProcess],
    publisher: Publisher,
    broker: BrokerProbe,
    pg_sessions: sessionmaker[Session],
    pg_engine: Engine,
) -> None:
    rng = random.Random(20261124)
    events, versions = history(rng)
    messages = [message(built, INTEGRATION) for built in events]
    resent = rng.sample(messages, len(messages) // 10)  # a sender's retries: same event ids
    stream: list[QueueMessage] = messages + resent
    rng.shuffle(stream)
    deadlocks_before = deadlocks(pg_engine)

    for start in range(0, len(stream), BURST):
        publisher.publish(stream[start : start + BURST])

    everything = {m.event_id for m in messages}
    wait_until(lambda: ledger(pg_sessions) == everything, timeout=120, interval=0.2)
    wait_until(lambda: broker.depth() == 0, timeout=60, interval=0.1)
    for worker in workers:
        worker.terminate()
    exits = [worker.wait(60) for worker in workers]

    logs = [entry for worker in workers for entry in worker.entries()]
    text_of_logs = "\n".join(worker.text() for worker in workers)
    outcomes: Counter[str] = Counter()
    for entry in logs:
        outcomes.update(entry.get("outcomes") or {})
    assert exits == [0] * WORKERS, text_of_logs[-4000:]
    # Every event was decided once; the resent copies were duplicates.
    assert outcomes["applied"] + outcomes["stale"] + outcomes["refused"] == len(messages)
    assert outcomes["duplicate"] == len(resent)
    assert set(outcomes) <= {"applied", "stale", "refused", "duplicate"}, outcomes
    # Each worker applied some of it: the stream was shared.
    assert all(any(e.get("outcomes") for e in w.entries()) for w in workers)

    assert stored(pg_sessions) == oracle(versions)
    with pg_sessions() as session:
        open_errors = session.scalar(select(func.count()).where(SyncError.resolved.is_(False)))
        dead_letters = session.scalar(select(func.count()).select_from(DeadLetter))
    assert open_errors == 0
    assert dead_letters == 0 and broker.depth(DEAD_LETTER_QUEUE) == 0

    # No deadlock, no serialization failure, no batch bisected. A batch may have been
    # applied again whole because a record it healed late was locked by another batch
    # meanwhile (worker.sync.writers.locks): that, and nothing else, held a batch back.
    assert deadlocks(pg_engine) == deadlocks_before
    for marker in ("deadlock", "could not serialize", "failed", "dead-letter"):
        assert marker not in text_of_logs.lower(), marker
    held_back = [e for e in logs if e["message"].startswith("database unavailable")]
    assert all("LockBusy" in e["message"] for e in held_back), held_back
