"""Idempotence and order of apply_batch, on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.events import deleted, message, project, task, timesheet
from tests.support import add_integration
from worker.db import Integration, Project, Task, Timesheet
from worker.db.base import utcnow
from worker.sync.apply import Outcome, apply_batch

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"


@pytest.fixture
def sessions(any_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return add_integration(any_sessions, INTEGRATION)


def apply(sessions: sessionmaker[Session], *messages: QueueMessage) -> list[str]:
    with sessions.begin() as session:
        outcomes: list[Outcome] = apply_batch(session, messages)
    return [o.status for o in outcomes]


def stored(sessions: sessionmaker[Session], source_id: str = "P1") -> Project:
    with sessions() as session:
        return session.scalars(select(Project).where(Project.source_id == source_id)).one()


def test_the_same_event_twice_has_one_effect(sessions: sessionmaker[Session]) -> None:
    first = message(project(name="Apollo"), INTEGRATION, "e1")
    assert apply(sessions, first) == ["applied"]
    assert apply(sessions, first) == ["duplicate"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 1


def test_the_same_event_twice_in_one_batch_has_one_effect(sessions: sessionmaker[Session]) -> None:
    first = message(project(name="Apollo"), INTEGRATION, "e1")
    assert apply(sessions, first, first) == ["applied", "duplicate"]


def test_an_older_version_after_a_newer_one_is_ignored(sessions: sessionmaker[Session]) -> None:
    apply(sessions, message(project(name="New", at="2026-11-24T11:00:00Z"), INTEGRATION, "new"))
    assert apply(
        sessions, message(project(name="Old", at="2026-11-24T10:00:00Z"), INTEGRATION, "old")
    ) == ["stale"]
    assert stored(sessions).name == "New"


def test_within_a_batch_the_newest_version_wins_whatever_the_order(
    sessions: sessionmaker[Session],
) -> None:
    outcomes = apply(
        sessions,
        message(project(name="B", at="2026-11-24T11:00:00Z"), INTEGRATION, "b"),
        message(project(name="A", at="2026-11-24T10:00:00Z"), INTEGRATION, "a"),
    )
    assert outcomes == ["applied", "stale"]
    assert stored(sessions).name == "B"


def test_a_delete_then_a_late_older_update_stays_deleted(sessions: sessionmaker[Session]) -> None:
    original = project(name="Website redesign", at="2026-11-24T10:00:00Z")
    apply(sessions, message(original, INTEGRATION, "c"))
    apply(sessions, message(deleted("projects", "P1", at="2026-11-24T12:00:00Z"), INTEGRATION, "d"))
    assert apply(
        sessions, message(project(name="Late", at="2026-11-24T11:00:00Z"), INTEGRATION, "u")
    ) == ["stale"]
    kept = stored(sessions)
    assert kept.deleted is True
    assert kept.name == "Website redesign"


def test_a_delete_of_an_unseen_record_blocks_an_older_create(
    sessions: sessionmaker[Session],
) -> None:
    apply(sessions, message(deleted("projects", "P1", at="2026-11-24T12:00:00Z"), INTEGRATION, "d"))
    apply(sessions, message(project(action="created", at="2026-11-24T10:00:00Z"), INTEGRATION, "c"))
    assert stored(sessions).deleted is True


def test_at_the_same_version_a_delete_beats_an_update(sessions: sessionmaker[Session]) -> None:
    at = "2026-11-24T10:00:00Z"
    apply(sessions, message(deleted("projects", "P1", at=at), INTEGRATION, "d"))
    assert apply(sessions, message(project(at=at), INTEGRATION, "u")) == ["stale"]
    assert stored(sessions).deleted is True


def test_a_newer_update_after_a_delete_restores_the_record(
    sessions: sessionmaker[Session],
) -> None:
    apply(sessions, message(deleted("projects", "P1", at="2026-11-24T10:00:00Z"), INTEGRATION, "d"))
    apply(sessions, message(project(name="Back", at="2026-11-24T11:00:00Z"), INTEGRATION, "u"))
    assert (stored(sessions).deleted, stored(sessions).name) == (False, "Back")


def test_unknown_payload_fields_are_kept_with_the_record(sessions: sessionmaker[Session]) -> None:
    apply(sessions, message(project(cf_region="EMEA"), INTEGRATION, "e"))
    assert (stored(sessions).payload or {})["cf_region"] == "EMEA"


def test_a_project_links_its_primary_client_as_customer(sessions: sessionmaker[Session]) -> None:
    apply(sessions, message(project(), INTEGRATION, "e"))
    assert stored(sessions).customer_id is not None


def test_children_arriving_after_their_project_point_at_it(
    sessions: sessionmaker[Session],
) -> None:
    apply(
        sessions,
        message(task(name="Design", action="created"), INTEGRATION, "t"),
        message(project(), INTEGRATION, "p"),
    )
    with sessions() as session:
        child = session.scalars(select(Task)).one()
    assert child.project_id == stored(sessions).id


def logged_on(log_date: str) -> dict[str, Any]:
    return timesheet(f"L-{log_date}", log_date=log_date, minutes=90, action="created")


def test_billing_status_follows_the_invoiced_before_date(sessions: sessionmaker[Session]) -> None:
    apply(
        sessions,
        message(project(), INTEGRATION, "p"),
        message(logged_on("2026-10-31"), INTEGRATION, "a"),
        message(logged_on("2026-11-01"), INTEGRATION, "b"),
    )
    with sessions() as session:
        statuses = dict(list(session.execute(select(Timesheet.log_date, Timesheet.billing_status))))
    assert statuses == {date(2026, 10, 31): "invoiced", date(2026, 11, 1): "unbilled"}


def test_events_of_a_deleted_integration_are_skipped(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(update(Integration).values(deleted_at=utcnow()))
    assert apply(sessions, message(project(), INTEGRATION, "e")) == ["skipped"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0
