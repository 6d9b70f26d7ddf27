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

from schemas import QueueMessage, event_adapter
from tests.conftest import Connected
from tests.support import BrokerProbe, add_integration, project_event, running, wait_until
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


def message(event_id: str, event: dict[str, Any], integration: str = INTEGRATION) -> QueueMessage:
    return QueueMessage(
        event_id=event_id, integration_id=integration, event=event_adapter.validate_python(event)
    )


def task_event(source_id: str = "T1", project_id: str = "P1") -> dict[str, Any]:
    return {
        "module": "tasks",
        "action": "created",
        "modified_at": "2026-11-24T10:00:00Z",
        "data": {"id": source_id, "project_id": project_id, "name": "Design"},
    }


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
        applying(message("p", project_event(action="created"))),
        applying(message("t", task_event())),
    )
    assert live_tasks(sessions) == {"T1"}
    assert open_errors(sessions) == []


def test_a_project_written_while_its_task_is_being_refused_heals_the_task(
    sessions: sessionmaker[Session],
) -> None:
    overlapping(
        sessions,
        applying(message("t", task_event())),
        applying(message("p", project_event(action="created"))),
    )
    assert live_tasks(sessions) == {"T1"}
    assert open_errors(sessions) == []


def test_an_outdated_task_arriving_before_its_project_leaves_no_open_error(
    sessions: sessionmaker[Session],
) -> None:
    deleted = {**task_event(), "action": "deleted", "modified_at": "2026-11-24T12:00:00Z"}
    deleted["data"] = {"id": "T1", "project_id": "P1"}
    for batch in (
        [message("t-deleted", deleted)],
        [message("t-older", task_event())],  # older than the delete, its project not there
        [message("p", project_event(action="created"))],
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
        payload=task_event(),
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


class Counter:
    def __init__(self) -> None:
        self.seen = 0
        self._lock = threading.Lock()

    def __call__(self, outcomes: Any) -> None:
        with self._lock:
            self.seen += len(outcomes)


@pytest.fixture
def two_workers(
    one_event_per_batch: Settings, pg_sessions: sessionmaker[Session]
) -> Iterator[Counter]:
    counter = Counter()
    workers = [build_consumer(one_event_per_batch, pg_sessions, on_outcomes=counter) for _ in "ab"]
    with running(*workers):
        yield counter


def test_two_workers_taking_projects_and_their_tasks_side_by_side_apply_every_task(
    integration: Connected,
    publisher: Publisher,
    broker: BrokerProbe,
    pg_sessions: sessionmaker[Session],
    two_workers: Counter,
) -> None:
    stream = []
    for n in range(PAIRS):
        project = project_event(f"P{n}", action="created")
        stream += [
            message(f"p-{n}", project, integration.id),
            message(f"t-{n}", task_event(f"T{n}", f"P{n}"), integration.id),
        ]
    publisher.publish(stream)

    wait_until(lambda: two_workers.seen == len(stream), timeout=60)
    assert live_tasks(pg_sessions) == {f"T{n}" for n in range(PAIRS)}
    assert open_errors(pg_sessions) == []
