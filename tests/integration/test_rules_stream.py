"""A realistic portal as a stream: shuffled, duplicated and split into random batches, it
ends in exactly the state of the ordered stream, with the expected error summary."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.events import CLIENT, bug, deleted, milestone, project, task, tasklist, timesheet, user
from tests.integration.sync_harness import Sync
from worker.db import Bug, Customer, Milestone, Project, StaffUser, Task, Tasklist, Timesheet

pytestmark = pytest.mark.integration

T0, T1, T2, T3 = (f"2026-11-24T1{h}:00:00Z" for h in range(4))
BEN = {"id": "U2", "name": "Ben Ode", "email": "ben@example.com"}


def portal() -> list[dict[str, Any]]:
    """Three projects (one without primary customer), their records, logs, users; with
    later updates and deletes. Every event is distinct (its own version)."""
    events = [
        project("P1", at=T0),
        project(
            "P2",
            client={**CLIENT, "id": "C2", "name": "Initech", "email": "x@initech.example"},
            at=T0,
        ),
        project("P3", client=None, at=T0),
        user("U1", "asha@example.com", at=T0),
        user("U2", "ben@example.com", at=T0),
    ]
    for pid in ("P1", "P2", "P3"):
        events += [
            milestone(f"M-{pid}", pid, at=T0),
            tasklist(f"L-{pid}", pid, at=T0),
            bug(f"B-{pid}", pid, at=T0),
        ]
        events += [task(f"T{n}-{pid}", pid, at=T0) for n in range(3)]
        events += [
            timesheet(
                f"TS{n}-{pid}", pid, task_id=f"T{n % 3}-{pid}", log_date=f"2026-10-{20 + n}", at=T0
            )
            for n in range(6)
        ]
        events += [
            timesheet(f"TB-{pid}", pid, bug_id=f"B-{pid}", owner=BEN, at=T0),
            timesheet(f"TG-{pid}", pid, at=T0),
            timesheet(f"TN-{pid}", pid, bill_status="Non Billable", at=T0),
            timesheet(f"TP-{pid}", pid, approval_status="Pending", at=T0),
        ]
    events += [
        project("P1", name="Apollo v2", at=T1),
        task("T0-P1", "P1", name="Renamed", at=T1),
        timesheet("TP-P1", "P1", at=T1),  # approved later
        timesheet(
            "TS3-P1",
            "P1",
            task_id="T0-P1",
            log_date="2026-10-23",
            bill_status="Non Billable",
            at=T1,
        ),  # withdrawn
        deleted("tasks", "T2-P2", "P2", at=T1),
        deleted("projects", "P2", at=T2),
        timesheet("TS4-P2", "P2", task_id="T1-P2", log_date="2026-10-24", minutes=999, at=T1),
        task("T9-P1", "P1", at=T3),
        timesheet("TS9-P1", "P1", task_id="T9-P1", at=T3),
        timesheet("TX-P1", "P1", task_id="T404", at=T3),
    ]
    return events


MODELS = (Project, Milestone, Tasklist, Task, Bug, Timesheet, StaffUser)


def snapshot(sync: Sync) -> dict[str, Any]:
    """Everything observable, keyed by portal ids (billsync ids depend on arrival order)."""
    state: dict[str, Any] = {}
    with sync.sessions() as session:
        for model in MODELS:
            rows = session.scalars(select(model).where(model.integration_id == sync.integration_id))
            # A withdrawn or deleted record is not observable beyond its version.
            state[model.__tablename__] = sorted(
                (r.source_id, r.deleted, r.source_modified_at, None if r.deleted else _fields(r))
                for r in rows
            )
        customers = session.scalars(
            select(Customer).where(Customer.organization_id == sync.organization_id)
        )
        state["customers"] = sorted((c.source_id, c.name, c.currency_code) for c in customers)
    # Counts differ with the duplicates a shuffled stream re-sends; the open set may not.
    state["errors"] = sorted((m, s, r) for m, s, r, _ in sync.errors())
    return state


def _fields(row: Any) -> tuple[Any, ...]:
    linked = tuple(
        bool(getattr(row, c, None)) for c in ("project_id", "task_id", "bug_id", "staff_id")
    )
    return (
        getattr(row, "name", None),
        getattr(row, "minutes", None),
        getattr(row, "billing_status", None),
        getattr(row, "kind", None),
        linked,
    )


def replay(sync: Sync, events: list[dict[str, Any]], rng: random.Random | None) -> None:
    if rng is None:
        for e in events:
            sync.apply(e)
        return
    stream = events + rng.sample(events, len(events) // 4)  # duplicates
    rng.shuffle(stream)
    while stream:
        size = rng.randint(1, 40)
        sync.apply(*stream[:size])
        stream = stream[size:]


@pytest.fixture
def ordered(connect_with: Callable[..., Sync]) -> dict[str, Any]:
    sync = connect_with(invoiced_before="2026-10-22")
    sync.add_user("asha@example.com")
    replay(sync, portal(), None)
    return snapshot(sync)


@pytest.mark.parametrize("seed", range(1, 6))
def test_a_shuffled_duplicated_stream_ends_in_the_state_of_the_ordered_stream(
    pg_sessions, make_second_org, ordered: dict[str, Any], seed: int
) -> None:
    sync = make_second_org(invoiced_before="2026-10-22")
    sync.add_user("asha@example.com")
    replay(sync, portal(), random.Random(seed))
    shuffled = snapshot(sync)
    for part in ordered:
        assert shuffled[part] == ordered[part], part


def test_the_error_summary_of_the_stream_is_the_expected_set(ordered: dict[str, Any]) -> None:
    open_errors = set(ordered["errors"])
    assert open_errors == {
        ("projects", "P3", "no_primary_customer"),
        *{
            (m, f"{p}-P3", "related_project_missing")
            for m, p in [
                ("milestones", "M"),
                ("tasklists", "L"),
                ("bugs", "B"),
                ("tasks", "T0"),
                ("tasks", "T1"),
                ("tasks", "T2"),
            ]
        },
        *{
            ("timesheets", f"{t}-P3", "project_without_primary_customer")
            for t in ["TS0", "TS1", "TS2", "TS3", "TS4", "TS5", "TB", "TG"]
        },
        ("timesheets", "TN-P3", "not_billable"),
        ("timesheets", "TP-P3", "not_approved"),
        ("timesheets", "TN-P1", "not_billable"),
        ("timesheets", "TN-P2", "not_billable"),
        ("timesheets", "TP-P2", "not_approved"),
        ("timesheets", "TS3-P1", "not_billable"),
        ("timesheets", "TX-P1", "related_task_missing"),
    }
