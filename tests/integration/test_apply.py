"""Idempotence and order of apply_batch, on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage, event_adapter
from tests.support import add_integration, project_event
from worker.db import Integration, Project, Task, Timesheet
from worker.db.base import utcnow
from worker.sync.apply import Outcome, apply_batch

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"


@pytest.fixture
def sessions(any_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return add_integration(any_sessions, INTEGRATION)


def message(event_id: str, event: dict[str, Any]) -> QueueMessage:
    return QueueMessage(
        event_id=event_id, integration_id=INTEGRATION, event=event_adapter.validate_python(event)
    )


def apply(sessions: sessionmaker[Session], *messages: QueueMessage) -> list[str]:
    with sessions.begin() as session:
        outcomes: list[Outcome] = apply_batch(session, messages)
    return [o.status for o in outcomes]


def project(sessions: sessionmaker[Session], source_id: str = "P1") -> Project:
    with sessions() as session:
        return session.scalars(select(Project).where(Project.source_id == source_id)).one()


def test_the_same_event_twice_has_one_effect(sessions: sessionmaker[Session]) -> None:
    first = message("e1", project_event(name="Apollo"))
    assert apply(sessions, first) == ["applied"]
    assert apply(sessions, first) == ["duplicate"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 1


def test_the_same_event_twice_in_one_batch_has_one_effect(sessions: sessionmaker[Session]) -> None:
    first = message("e1", project_event(name="Apollo"))
    assert apply(sessions, first, first) == ["applied", "duplicate"]


def test_an_older_version_after_a_newer_one_is_ignored(sessions: sessionmaker[Session]) -> None:
    apply(sessions, message("new", project_event(name="New", at="2026-11-24T11:00:00Z")))
    assert apply(
        sessions, message("old", project_event(name="Old", at="2026-11-24T10:00:00Z"))
    ) == ["stale"]
    assert project(sessions).name == "New"


def test_within_a_batch_the_newest_version_wins_whatever_the_order(
    sessions: sessionmaker[Session],
) -> None:
    outcomes = apply(
        sessions,
        message("b", project_event(name="B", at="2026-11-24T11:00:00Z")),
        message("a", project_event(name="A", at="2026-11-24T10:00:00Z")),
    )
    assert outcomes == ["applied", "stale"]
    assert project(sessions).name == "B"


def test_a_delete_then_a_late_older_update_stays_deleted(sessions: sessionmaker[Session]) -> None:
    apply(sessions, message("c", project_event(at="2026-11-24T10:00:00Z")))
    apply(sessions, message("d", project_event(action="deleted", at="2026-11-24T12:00:00Z")))
    assert apply(sessions, message("u", project_event(name="Late", at="2026-11-24T11:00:00Z"))) == [
        "stale"
    ]
    kept = project(sessions)
    assert kept.deleted is True
    assert kept.name == "Website redesign"


def test_a_delete_of_an_unseen_record_blocks_an_older_create(
    sessions: sessionmaker[Session],
) -> None:
    apply(sessions, message("d", project_event(action="deleted", at="2026-11-24T12:00:00Z")))
    apply(sessions, message("c", project_event(action="created", at="2026-11-24T10:00:00Z")))
    assert project(sessions).deleted is True


def test_at_the_same_version_a_delete_beats_an_update(sessions: sessionmaker[Session]) -> None:
    at = "2026-11-24T10:00:00Z"
    apply(sessions, message("d", project_event(action="deleted", at=at)))
    assert apply(sessions, message("u", project_event(at=at))) == ["stale"]
    assert project(sessions).deleted is True


def test_a_newer_update_after_a_delete_restores_the_record(
    sessions: sessionmaker[Session],
) -> None:
    apply(sessions, message("d", project_event(action="deleted", at="2026-11-24T10:00:00Z")))
    apply(sessions, message("u", project_event(name="Back", at="2026-11-24T11:00:00Z")))
    assert (project(sessions).deleted, project(sessions).name) == (False, "Back")


def test_unknown_payload_fields_are_kept_with_the_record(sessions: sessionmaker[Session]) -> None:
    event = project_event()
    event["data"]["cf_region"] = "EMEA"
    apply(sessions, message("e", event))
    assert (project(sessions).payload or {})["cf_region"] == "EMEA"


def test_a_project_links_its_primary_client_as_customer(sessions: sessionmaker[Session]) -> None:
    apply(sessions, message("e", project_event()))
    assert project(sessions).customer_id is not None


def test_children_arriving_after_their_project_point_at_it(
    sessions: sessionmaker[Session],
) -> None:
    apply(
        sessions,
        message(
            "t",
            {
                "module": "tasks",
                "action": "created",
                "modified_at": "2026-11-24T10:00:00Z",
                "data": {"id": "T1", "project_id": "P1", "name": "Design"},
            },
        ),
        message("p", project_event()),
    )
    with sessions() as session:
        task = session.scalars(select(Task)).one()
    assert task.project_id == project(sessions).id


def timesheet(log_date: str) -> dict[str, Any]:
    return {
        "module": "timesheets",
        "action": "created",
        "modified_at": "2026-11-24T10:00:00Z",
        "data": {
            "id": f"L-{log_date}",
            "project_id": "P1",
            "log_date": log_date,
            "minutes": 90,
            "bill_status": "Billable",
            "approval_status": "Approved",
            "owner": {"id": "U1", "name": "Asha Rao", "email": "asha@example.com"},
        },
    }


def test_billing_status_follows_the_invoiced_before_date(sessions: sessionmaker[Session]) -> None:
    apply(
        sessions,
        message("p", project_event()),
        message("a", timesheet("2026-10-31")),
        message("b", timesheet("2026-11-01")),
    )
    with sessions() as session:
        statuses = dict(list(session.execute(select(Timesheet.log_date, Timesheet.billing_status))))
    assert statuses == {date(2026, 10, 31): "invoiced", date(2026, 11, 1): "unbilled"}


def test_events_of_a_deleted_integration_are_skipped(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.execute(update(Integration).values(deleted_at=utcnow()))
    assert apply(sessions, message("e", project_event())) == ["skipped"]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 0
