"""Several workers at once on PostgreSQL: nothing waits for a dependency that is there,
and a newer refusal is never resolved by an older version.

Two transactions are made to overlap deterministically: the first is applied and
left open; the second runs in a thread until it has finished or is waiting for a lock
(seen in ``pg_stat_activity``); then the first commits, then the second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.conftest import Connected
from tests.events import deleted, message, project, task
from tests.support import BrokerProbe, Recorder, add_integration, running, wait_until
from worker.cli.runtime import build_consumer
from worker.db import SyncError, Task
from worker.messaging.publisher import Publisher
from worker.settings import Settings
from worker.sync.apply import Outcome, apply_batch
from worker.sync.error_summary import Refusal, record_refusals, resolve_records
from worker.sync.rules.reasons import RELATED_PROJECT_MISSING

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"


@pytest.fixture
def sessions(pg_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return add_integration(pg_sessions, INTEGRATION)


def backend_pid(session: Session) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def waiting_for_a_lock(sessions: sessionmaker[Session], pid: int) -> bool:
    with sessions() as session:
        kind = session.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        ).scalar()
    return kind == "Lock"


def overlapping(
    sessions: sessionmaker[Session],
    first: Callable[[Session], Any],
    second: Callable[[Session], Any],
) -> None:
    """Run ``first`` in an open transaction; run ``second`` in another one until it is done
    or waits for a lock; commit ``first``, then let ``second`` finish and commit."""
    pids: list[int] = []
    errors: list[BaseException] = []

    def run_second() -> None:
        try:
            with sessions.begin() as session:
                pids.append(backend_pid(session))
                second(session)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    def blocked(pids: list[int]) -> bool:
        return bool(pids) and waiting_for_a_lock(sessions, pids[0])

    thread = threading.Thread(target=run_second)
    with sessions.begin() as session:
        first(session)
        thread.start()
        wait_until(
            lambda: not thread.is_alive() or (pids and waiting_for_a_lock(sessions, pids[0]))
        )
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors


def applying(*messages: QueueMessage) -> Callable[[Session], list[Outcome]]:
    return lambda session: apply_batch(session, messages)


def open_errors(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(SyncError.source_id, SyncError.reason).where(SyncError.resolved.is_(False))
        )
        return [(s, r) for s, r in rows]


def live_tasks(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Task.source_id).where(Task.deleted.is_(False))))


def test_a_task_looked_at_while_its_project_is_being_written_is_applied(
    sessions: sessionmaker[Session],
) -> None:
    overlapping(
        sessions,
        applying(message(project(action="created"), INTEGRATION, "p")),
        applying(message(task(action="created"), INTEGRATION, "t")),
    )
    assert live_tasks(sessions) == {"T1"}
    assert open_errors(sessions) == []


def test_a_project_written_while_its_task_is_being_refused_heals_the_task(
    sessions: sessionmaker[Session],
) -> None:
    overlapping(
        sessions,
        applying(message(task(action="created"), INTEGRATION, "t")),
        applying(message(project(action="created"), INTEGRATION, "p")),
    )
    assert live_tasks(sessions) == {"T1"}
    assert open_errors(sessions) == []


def test_an_outdated_task_arriving_before_its_project_leaves_no_open_error(
    sessions: sessionmaker[Session],
) -> None:
    removal = deleted("tasks", "T1", "P1", at="2026-11-24T12:00:00Z")
    for batch in (
        [message(removal, INTEGRATION, "t-deleted")],
        # older than the delete, its project not there
        [message(task(action="created"), INTEGRATION, "t-older")],
        [message(project(action="created"), INTEGRATION, "p")],
    ):
        with sessions.begin() as session:
            apply_batch(session, batch)
    assert live_tasks(sessions) == set()
    assert open_errors(sessions) == []


def at(hour: int) -> datetime:
    return datetime(2026, 11, 24, hour, tzinfo=UTC)


def refused(version: datetime) -> Refusal:
    return Refusal(
        integration_id=INTEGRATION,
        module="tasks",
        source_id="T1",
        reason=RELATED_PROJECT_MISSING,
        payload=task(action="created"),
        version=version,
        depends_on="P1",
    )


def test_applying_a_version_leaves_open_a_newer_refusal_recorded_meanwhile(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        record_refusals(session, [refused(at(10))])

    overlapping(
        sessions,
        lambda session: record_refusals(session, [refused(at(12))]),
        lambda session: resolve_records(session, INTEGRATION, "tasks", {"T1": at(11)}),
    )

    with sessions() as session:
        error = session.scalars(select(SyncError)).one()
    assert (error.resolved, error.version) == (False, at(12))


# -- two consumers on RabbitMQ, one event per batch ------------------------------------

PAIRS = 40


@pytest.fixture
def one_event_per_batch(settings: Settings) -> Settings:
    return settings.model_copy(update={"batch_size": 1, "prefetch": 1})


@pytest.fixture
def two_workers(
    one_event_per_batch: Settings, pg_sessions: sessionmaker[Session]
) -> Iterator[Recorder]:
    counter = Recorder()
    workers = [build_consumer(one_event_per_batch, pg_sessions, hooks=[counter]) for _ in "ab"]
    with running(*workers):
        yield counter


def test_two_workers_taking_projects_and_their_tasks_side_by_side_apply_every_task(
    integration: Connected,
    publisher: Publisher,
    broker: BrokerProbe,
    pg_sessions: sessionmaker[Session],
    two_workers: Recorder,
) -> None:
    stream = []
    for n in range(PAIRS):
        stream += [
            message(project(f"P{n}", action="created"), integration.id, f"p-{n}"),
            message(task(f"T{n}", f"P{n}", action="created"), integration.id, f"t-{n}"),
        ]
    publisher.publish(stream)

    wait_until(lambda: two_workers.seen == len(stream), timeout=60)
    assert live_tasks(pg_sessions) == {f"T{n}" for n in range(PAIRS)}
    assert open_errors(pg_sessions) == []
