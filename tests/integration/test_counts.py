"""The counts the database keeps for status (``worker.db.counts``) equal counting the rows,
whatever changes them, on PostgreSQL and on the embedded SQLite."""

from __future__ import annotations

import random
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, delete, func, insert, inspect, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.events import deleted, message, project, task
from tests.support import add_integration
from worker.db import (
    Counter,
    DeadLetter,
    Integration,
    IntegrationCount,
    ParkedEvent,
    Project,
    SyncError,
    integration_counts,
    make_sessionmaker,
    migrate,
)
from worker.db.base import utcnow
from worker.integrations import status
from worker.messaging.dead_letters import archive, edit
from worker.sync import MODULES
from worker.sync.apply import apply_batch

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"
OTHER = "int-2"


@pytest.fixture
def sessions(any_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    sessions = add_integration(any_sessions, INTEGRATION)
    with sessions.begin() as session:
        session.add(
            Integration(
                id=OTHER, organization_id="org-1", portal_id="other", status="active", modules=[]
            )
        )
    return sessions


def counted(session: Session) -> dict[tuple[str, str], int]:
    """Every count as counting the rows gives it (zeros left out)."""
    found: dict[tuple[str, str], int] = {}

    def add(counter: str, rows: Any) -> None:
        for integration_id, n in rows:
            if n:
                found[(integration_id, counter)] = n

    for spec in MODULES.values():
        table: Any = spec.model
        add(
            Counter.live_rows(spec.model.__tablename__),
            session.execute(
                select(table.integration_id, func.count())
                .where(table.integration_id.is_not(None), table.deleted.is_(False))
                .group_by(table.integration_id)
            ),
        )
    for integration_id, module, n in session.execute(
        select(SyncError.integration_id, SyncError.module, func.count())
        .where(SyncError.resolved.is_(False))
        .group_by(SyncError.integration_id, SyncError.module)
    ):
        found[(integration_id, Counter.open_errors(module))] = n
    for model, counter in (
        (ParkedEvent, Counter.PARKED_EVENTS),
        (DeadLetter, Counter.DEAD_LETTERS),
    ):
        kept: Any = model
        add(
            counter,
            session.execute(
                select(kept.integration_id, func.count())
                .where(kept.integration_id.is_not(None))
                .group_by(kept.integration_id)
            ),
        )
    return found


def kept(session: Session) -> dict[tuple[str, str], int]:
    """Every count as the database keeps it (zeros left out)."""
    found: dict[tuple[str, str], int] = {}
    for integration_id in (INTEGRATION, OTHER):
        for counter, n in integration_counts(session, integration_id).items():
            if n:
                found[(integration_id, counter)] = n
    return found


def assert_exact(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        assert kept(session) == counted(session)


def apply(sessions: sessionmaker[Session], *events: Any) -> list[str]:
    with sessions.begin() as session:
        outcomes = apply_batch(session, [message(e, INTEGRATION) for e in events])
    return [o.status for o in outcomes]


def module_status(sessions: sessionmaker[Session], module: str) -> tuple[int, int]:
    """(synced, errors) of ``module`` as status shows them."""
    with sessions() as session:
        shown = status(session, session.get_one(Integration, INTEGRATION)).modules[module]
    return shown.synced, shown.errors


# -- what the worker does --------------------------------------------------------------


def test_records_count_while_live_and_stop_when_deleted_until_brought_back(
    sessions: sessionmaker[Session],
) -> None:
    apply(sessions, project("P1"), project("P2"), project("P3"))
    assert module_status(sessions, "projects") == (3, 0)

    apply(sessions, deleted("projects", "P2", at="2026-11-24T12:00:00Z"))
    apply(sessions, project("P1", name="Renamed", at="2026-11-24T12:00:00Z"))  # counts stay
    assert module_status(sessions, "projects") == (2, 0)

    apply(sessions, project("P2", name="Back", at="2026-11-24T13:00:00Z"))
    assert module_status(sessions, "projects") == (3, 0)
    assert_exact(sessions)


def test_open_errors_count_until_resolved(sessions: sessionmaker[Session]) -> None:
    apply(sessions, project("P1"))
    assert apply(sessions, task("T1", "P9"), task("T2", "P9")) == ["refused", "refused"]
    assert module_status(sessions, "tasks") == (0, 2)

    apply(sessions, project("P9"))  # heals both: they apply from their kept payload
    assert module_status(sessions, "tasks") == (2, 0)
    assert_exact(sessions)


def test_parked_events_and_dead_letters_count_as_they_come_and_go(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        session.get_one(Integration, INTEGRATION).status = "disabled"
    apply(sessions, project("P1"), project("P2"))
    with sessions.begin() as session:
        archive(session, message(project("P3"), INTEGRATION).model_dump_json(), {}, "p.u")
        unreadable = archive(session, "not a message", {}, "p.u")
    with sessions() as session:
        shown = status(session, session.get_one(Integration, INTEGRATION))
    assert (shown.parked, shown.dead_letters) == (2, 1)

    with sessions.begin() as session:  # repaired: it names the integration now
        row = session.get_one(DeadLetter, unreadable.id)
        edit(session, row, project("P4"), "ops", integration_id=INTEGRATION)
    with sessions.begin() as session:  # as enabling does, once it republished them
        session.execute(delete(ParkedEvent))
    with sessions() as session:
        shown = status(session, session.get_one(Integration, INTEGRATION))
    assert (shown.parked, shown.dead_letters) == (0, 2)
    assert_exact(sessions)


# -- whatever else changes the rows ------------------------------------------------------


def test_any_sequence_of_changes_keeps_every_count_exact(
    sessions: sessionmaker[Session],
) -> None:
    """Many-row inserts, tombstones, records brought back or moved to another
    integration or to none, errors resolved and reopened or moved to another module,
    deletes, rolled-back transactions: after each, the counts equal the rows."""
    dice = random.Random(20261208)
    integrations = [INTEGRATION, OTHER, None]
    modules = ["projects", "tasks", "timesheets"]
    serial = 0

    def some_ids(session: Session, model: Any) -> list[int]:
        ids = list(session.scalars(select(model.id)))
        return dice.sample(ids, k=min(len(ids), dice.randint(0, 6)))

    def step(session: Session) -> None:
        nonlocal serial
        choice = dice.randrange(9)
        if choice == 0:
            rows = []
            for _ in range(dice.randint(1, 8)):
                serial += 1
                rows.append(
                    {
                        "organization_id": "org-1",
                        "integration_id": dice.choice(integrations),
                        "source_id": f"S{serial}",
                        "deleted": dice.random() < 0.3,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                )
            session.execute(insert(Project), rows)
        elif choice == 1:
            ids = some_ids(session, Project)
            session.execute(
                update(Project).where(Project.id.in_(ids)).values(deleted=~Project.deleted)
            )
        elif choice == 2:
            ids = some_ids(session, Project)
            session.execute(
                update(Project)
                .where(Project.id.in_(ids))
                .values(integration_id=dice.choice(integrations))
            )
        elif choice == 3:
            session.execute(delete(Project).where(Project.id.in_(some_ids(session, Project))))
        elif choice == 4:  # changes no count
            ids = some_ids(session, Project)
            session.execute(update(Project).where(Project.id.in_(ids)).values(name="same"))
        elif choice == 5:
            rows = []
            for _ in range(dice.randint(1, 8)):
                serial += 1
                rows.append(
                    {
                        "integration_id": dice.choice([INTEGRATION, OTHER]),
                        "module": dice.choice(modules),
                        "source_id": f"E{serial}",
                        "reason": "project_missing",
                        "message": "missing",
                        "resolved": dice.random() < 0.3,
                    }
                )
            session.execute(insert(SyncError), rows)
        elif choice == 6:
            ids = some_ids(session, SyncError)
            session.execute(
                update(SyncError).where(SyncError.id.in_(ids)).values(resolved=~SyncError.resolved)
            )
        elif choice == 7:
            ids = some_ids(session, SyncError)
            session.execute(
                update(SyncError).where(SyncError.id.in_(ids)).values(module=dice.choice(modules))
            )
        else:
            session.execute(delete(SyncError).where(SyncError.id.in_(some_ids(session, SyncError))))

    for _ in range(120):
        if dice.random() < 0.15:
            with sessions() as session:  # a transaction that rolls back changes nothing
                step(session)
                session.rollback()
        else:
            with sessions.begin() as session:
                for _ in range(dice.randint(1, 3)):
                    step(session)
        assert_exact(sessions)


def test_the_counts_of_a_module_table_follow_every_statement_of_a_batch(
    sessions: sessionmaker[Session],
) -> None:
    apply(sessions, *[project(f"P{n}") for n in range(30)])
    apply(sessions, *[deleted("projects", f"P{n}", at="2026-11-24T12:00:00Z") for n in range(10)])
    assert module_status(sessions, "projects") == (20, 0)
    assert_exact(sessions)


# -- PostgreSQL's folding and TRUNCATE ---------------------------------------------------


def deltas(sessions: sessionmaker[Session], integration_id: str) -> int:
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(IntegrationCount)
                .where(IntegrationCount.integration_id == integration_id)
            )
            or 0
        )


def test_folding_keeps_every_count_in_one_row_per_counter(
    pg_sessions: sessionmaker[Session],
) -> None:
    sessions = add_integration(pg_sessions, INTEGRATION)
    for n in range(40):
        apply(sessions, project(f"P{n}"))
    with sessions.begin() as session:
        session.execute(text("SELECT billsync_fold_counts(ARRAY[:i])"), {"i": INTEGRATION})

    assert deltas(sessions, INTEGRATION) == 1
    assert module_status(sessions, "projects") == (40, 0)
    assert_exact(sessions)


def test_folds_at_once_neither_lose_nor_double_a_delta(
    pg_sessions: sessionmaker[Session],
) -> None:
    sessions = add_integration(pg_sessions, INTEGRATION)
    for n in range(5):
        apply(sessions, project(f"P{n}"))
    first, second = sessions(), sessions()
    try:
        fold = text("SELECT billsync_fold_counts(ARRAY[:i])")
        first.execute(fold, {"i": INTEGRATION})  # holds the five deltas, uncommitted
        apply(sessions, project("P5"))  # a sixth, committed meanwhile
        second.execute(fold, {"i": INTEGRATION})  # skips the five, folds the sixth
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()

    assert module_status(sessions, "projects") == (6, 0)
    assert_exact(sessions)


def test_a_truncated_table_counts_nothing(pg_sessions: sessionmaker[Session]) -> None:
    sessions = add_integration(pg_sessions, INTEGRATION)
    apply(sessions, project("P1"))
    assert apply(sessions, task("T1", "P9")) == ["refused"]
    with sessions.begin() as session:
        session.execute(text("TRUNCATE sync_errors"))

    assert module_status(sessions, "projects") == (1, 0)
    assert module_status(sessions, "tasks") == (0, 0)
    assert_exact(sessions)


# -- the schema ---------------------------------------------------------------------------


def triggers(engine: Engine) -> dict[str, set[str]]:
    """Trigger names by table."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.execute(
                text(
                    "SELECT c.relname, t.tgname FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid "
                    "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
                )
            )
        else:
            rows = connection.execute(
                text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
            )
        found: dict[str, set[str]] = {}
        for table, name in rows:
            found.setdefault(table, set()).add(name)
    return found


def test_every_modules_table_is_counted(any_sessions: sessionmaker[Session]) -> None:
    engine = any_sessions.kw["bind"]
    events = (
        ("insert", "update", "delete", "truncate")
        if engine.dialect.name == "postgresql"
        else ("insert", "delete", "update_from", "update_to")
    )
    found = triggers(engine)
    for table in [s.model.__tablename__ for s in MODULES.values()] + [
        "sync_errors",
        "parked_events",
        "dead_letters",
    ]:
        assert {f"count_{table}_{e}" for e in events} <= found.get(table, set()), table


def test_the_upgrade_counts_the_rows_already_there(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine, "0011")
    sessions = add_integration(make_sessionmaker(fresh_engine), INTEGRATION)
    with sessions.begin() as session:
        session.add(
            Integration(
                id=OTHER, organization_id="org-1", portal_id="other", status="active", modules=[]
            )
        )
    apply(sessions, project("P1"), project("P2"), task("T1", "P9"))
    apply(sessions, deleted("projects", "P2", at="2026-11-24T12:00:00Z"))
    with sessions.begin() as session:
        archive(session, message(project("P3"), OTHER).model_dump_json(), {}, "p.u")

    migrate.upgrade_schema(fresh_engine)

    assert "integration_counts" in inspect(fresh_engine).get_table_names()
    assert module_status(sessions, "projects") == (1, 0)
    assert module_status(sessions, "tasks") == (0, 1)
    assert_exact(sessions)
    apply(sessions, project("P9"))  # and the triggers count from there on
    assert module_status(sessions, "tasks") == (1, 0)
    assert_exact(sessions)


def test_the_upgrade_keeps_a_dead_letters_traceback_once(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine, "0010")
    headers = {"x-billsync-error-class": "E", "x-billsync-traceback": "Traceback …", "a": 1}
    with fresh_engine.begin() as connection:
        for n, traceback in enumerate(("Traceback …", "")):
            connection.execute(
                insert(DeadLetter.__table__),
                {
                    "routing_key": "p.u",
                    "error_class": "E",
                    "error_message": "",
                    "traceback": traceback,
                    "attempts": 1,
                    "dead_at": utcnow(),
                    "body": f"body {n}",
                    "headers": headers,
                },
            )

    migrate.upgrade_schema(fresh_engine)

    with fresh_engine.connect() as connection:
        rows = connection.execute(
            select(DeadLetter.traceback, DeadLetter.headers).order_by(DeadLetter.id)
        ).all()
    # The second row's column was empty: it got the header's.
    assert [(t, h) for t, h in rows] == [
        ("Traceback …", {"x-billsync-error-class": "E", "a": 1})
    ] * 2


def test_the_counts_migration_goes_down_and_up_again(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    config = migrate.alembic_config(fresh_engine)
    with fresh_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0011")
    assert "integration_counts" not in inspect(fresh_engine).get_table_names()
    left = [name for names in triggers(fresh_engine).values() for name in names]
    assert not [name for name in left if name.startswith("count_")]

    migrate.upgrade_schema(fresh_engine)
    assert "integration_counts" in inspect(fresh_engine).get_table_names()
