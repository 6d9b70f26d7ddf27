"""Time logs, their billing status, their staff, and the invoiced lock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from tests.events import bug, deleted, project, task, timesheet, user
from tests.integration.sync_harness import Sync
from worker.db import ProjectStaff, Timesheet

pytestmark = pytest.mark.integration

LATER = "2026-11-24T11:00:00Z"
LATEST = "2026-11-24T12:00:00Z"


def reasons(sync: Sync) -> list[str]:
    return [reason for _, _, reason, _ in sync.errors()]


def test_timesheets_are_refused_when_the_module_is_not_selected(
    connect_with: Callable[..., Sync],
) -> None:
    sync = connect_with(modules=["projects"])
    assert sync.apply(project(), timesheet("L1")) == ["applied", "refused"]
    assert reasons(sync) == ["module_not_selected"]


def test_a_non_billable_log_is_refused_as_not_billable(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1", bill_status="Non Billable"))
    assert reasons(sync) == ["not_billable"]
    assert sync.live(Timesheet) == set()


@pytest.mark.parametrize("approval", ["Pending", "Unapproved", "Rejected"])
def test_a_log_that_is_not_approved_is_refused_as_not_approved(sync: Sync, approval: str) -> None:
    sync.apply(project(), timesheet("L1", approval_status=approval))
    assert reasons(sync) == ["not_approved"]


def test_task_bug_and_general_logs_all_sync(sync: Sync) -> None:
    sync.apply(
        project(),
        task("T1"),
        bug("B1"),
        timesheet("L-task", task_id="T1"),
        timesheet("L-bug", bug_id="B1"),
        timesheet("L-general"),
    )
    assert sync.live(Timesheet) == {"L-task", "L-bug", "L-general"}
    assert sync.row(Timesheet, "L-bug").bug_id is not None
    assert sync.row(Timesheet, "L-general").task_id is None


def test_a_log_of_a_project_without_primary_customer_is_refused_for_that(sync: Sync) -> None:
    sync.apply(project(client=None), timesheet("L1"))
    assert sync.errors() == [
        ("projects", "P1", "no_primary_customer", 1),
        ("timesheets", "L1", "project_without_primary_customer", 1),
    ]


def test_a_log_of_an_unknown_project_is_related_project_missing(sync: Sync) -> None:
    sync.apply(timesheet("L1", pid="P404"))
    assert sync.errors() == [("timesheets", "L1", "related_project_missing", 1)]


def test_a_log_of_a_missing_task_is_related_task_missing(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1", task_id="T404"))
    assert sync.errors() == [("timesheets", "L1", "related_task_missing", 1)]


def test_a_log_of_a_missing_bug_is_related_bug_missing(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1", bug_id="B404"))
    assert sync.errors() == [("timesheets", "L1", "related_bug_missing", 1)]


def test_a_log_waiting_for_its_task_heals_when_the_task_arrives(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1", task_id="T1"))
    sync.apply(task("T1"))
    assert sync.live(Timesheet) == {"L1"}
    assert sync.errors() == []


def test_a_log_waiting_for_a_primary_customer_heals_when_the_project_gets_one(sync: Sync) -> None:
    sync.apply(project(client=None), timesheet("L1"))
    sync.apply(project(at=LATER))
    assert sync.live(Timesheet) == {"L1"}
    assert sync.errors() == []


def test_timesheet_dated_before_the_cutoff_day_is_invoiced(
    connect_with: Callable[..., Sync],
) -> None:
    sync = connect_with(invoiced_before="2026-11-01")
    sync.apply(project(), timesheet("L1", log_date="2026-10-31"))
    assert sync.row(Timesheet, "L1").billing_status == "invoiced"


def test_timesheet_dated_on_cutoff_day_is_unbilled(connect_with: Callable[..., Sync]) -> None:
    sync = connect_with(invoiced_before="2026-11-01")
    sync.apply(project(), timesheet("L1", log_date="2026-11-01"))
    assert sync.row(Timesheet, "L1").billing_status == "unbilled"


def test_with_all_unbilled_every_log_is_unbilled(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1", log_date="2001-01-01"))
    assert sync.row(Timesheet, "L1").billing_status == "unbilled"


def test_a_log_that_becomes_approved_later_syncs_then(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1", approval_status="Pending"))
    sync.apply(timesheet("L1", at=LATER))
    assert sync.live(Timesheet) == {"L1"}
    assert sync.errors() == []
    assert sync.errors(resolved=True) == [("timesheets", "L1", "not_approved", 1)]


def test_a_log_that_stops_being_billable_is_withdrawn(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1"))
    assert sync.apply(timesheet("L1", bill_status="Non Billable", at=LATER)) == ["refused"]
    assert sync.live(Timesheet) == set()
    assert reasons(sync) == ["not_billable"]


def invoice(sync: Sync, source_id: str) -> None:
    """Mark a log invoiced, as billing does."""
    with sync.sessions.begin() as session:
        session.execute(
            update(Timesheet)
            .where(Timesheet.source_id == source_id)
            .values(billing_status="invoiced")
        )


def test_an_update_of_an_invoiced_log_changes_nothing_and_is_a_conflict_with_both_versions(
    sync: Sync,
) -> None:
    sync.apply(project(), timesheet("L1", minutes=60))
    invoice(sync, "L1")
    assert sync.apply(timesheet("L1", minutes=90, at=LATER)) == ["refused"]
    assert sync.row(Timesheet, "L1").minutes == 60
    conflict = sync.error("timesheets", "L1", "conflict_invoiced")
    assert conflict.details["invoiced"]["data"]["minutes"] == 60
    assert conflict.details["source"]["data"]["minutes"] == 90


def test_a_delete_of_an_invoiced_log_changes_nothing_and_is_a_conflict(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1"))
    invoice(sync, "L1")
    sync.apply(deleted("timesheets", "L1", "P1", at=LATER))
    assert sync.live(Timesheet) == {"L1"}
    assert reasons(sync) == ["conflict_invoiced"]


def test_a_log_owner_who_is_an_organization_user_becomes_project_staff(sync: Sync) -> None:
    sync.add_user("ASHA@example.com")
    sync.apply(project(), timesheet("L1"))
    assert sync.staff("U1").kind == "project_staff"


def test_a_log_owner_who_is_not_an_organization_user_is_inactive_timesheet_staff(
    sync: Sync,
) -> None:
    sync.apply(project(), timesheet("L1"))
    assert sync.staff("U1").kind == "inactive_timesheet_staff"


def test_adding_the_user_to_the_organization_later_makes_the_staff_project_staff(
    sync: Sync,
) -> None:
    sync.apply(project(), timesheet("L1"))
    sync.add_user("asha@example.com")
    assert sync.staff("U1").kind == "project_staff"


def test_users_synced_through_the_users_module_follow_the_same_rule(sync: Sync) -> None:
    sync.add_user("ben@example.com")
    sync.apply(user("U2", "ben@example.com"), user("U3", "cleo@example.com"))
    assert (sync.staff("U2").kind, sync.staff("U3").kind) == (
        "project_staff",
        "inactive_timesheet_staff",
    )


def test_the_owner_of_a_synced_log_becomes_staff_of_its_project(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1"), timesheet("L2"))
    with sync.sessions() as session:
        links = list(session.execute(select(ProjectStaff.project_id, ProjectStaff.staff_id)))
    assert links == [(sync.row(Timesheet, "L1").project_id, sync.staff("U1").id)]
    assert sync.row(Timesheet, "L1").staff_id == sync.staff("U1").id


def test_a_users_module_update_keeps_the_staff_record_a_log_created(sync: Sync) -> None:
    sync.apply(project(), timesheet("L1"))
    staff_id = sync.staff("U1").id
    sync.apply(user("U1", "asha@example.com", at=LATEST))
    assert sync.staff("U1").id == staff_id
    assert sync.staff("U1").name == "User U1"
