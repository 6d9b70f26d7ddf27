"""Bounded storage: `billsync db prune` removes what is older than its retention, keeps
what must stay, and the event-id ledger still sees every duplicate it must.

Each test has a database of its own (a new SQLite file, or a schema in the run's
PostgreSQL: ``fresh_engine``), migrated to head, so that weeks of the ledger made or
dropped here never touch the other tests. Time is injected: rows are claimed, resolved
or finished at ``NOW`` minus some days, and the prune is told what ``now`` is.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.events import message, project
from tests.support import add_integration, wait_until
from worker.cli import cli
from worker.db import (
    DeadLetter,
    DeadLetterEdit,
    ParkedEvent,
    ProcessedEvent,
    SyncError,
    SyncRun,
    ensure_ledger_partitions,
    make_sessionmaker,
    migrate,
    prune,
    utcnow,
)
from worker.db import partitions as ledger_partitions_module
from worker.db import retention as retention_module
from worker.db.partitions import (
    MAINTENANCE_LOCK_SPACE,
    ledger_partitions,
    week_start,
    weekly_name,
)
from worker.db.retention import PartitionBusy, PruneResult
from worker.pull.scheduler import SyncScheduler
from worker.settings import Settings
from worker.sync.apply import apply_batch
from worker.sync.upsert import claim_events

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"
NOW = utcnow()
DAY = timedelta(days=1)
# The defaults: the ledger 35 days, the redelivery window 14, resolved errors 90, the
# dead-letter audit 365, sync runs 90.
LEDGER_DAYS, WINDOW_DAYS = 35, 14

only_postgresql = pytest.mark.parametrize("fresh_engine", ["postgresql"], indirect=True)


@pytest.fixture
def engine(fresh_engine: Engine) -> Engine:
    migrate.upgrade_schema(fresh_engine)
    return fresh_engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return add_integration(make_sessionmaker(engine), INTEGRATION)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def weeks_from(engine: Engine, at: Any) -> None:
    """On PostgreSQL, the ledger's weekly partitions from ``at``'s week on (four ahead)."""
    if is_postgresql(engine):
        with engine.begin() as connection:
            ensure_ledger_partitions(connection, at)


def claim(sessions: sessionmaker[Session], *event_ids: str, at: Any = NOW) -> set[str]:
    with sessions.begin() as session:
        found = claim_events(session, [(INTEGRATION, e) for e in event_ids], now=at)
    return {e for _, e in found}


def in_ledger(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(ProcessedEvent.event_id)))


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def pruned(engine: Engine, settings: Settings, **options: Any) -> PruneResult:
    options.setdefault("now", NOW)
    return prune(engine, settings, **options)


def partition_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {p.name for p in ledger_partitions(connection)}


def dead_letter(sessions: sessionmaker[Session], event_id: str, dead_at: Any = NOW) -> int:
    with sessions.begin() as session:
        row = DeadLetter(
            integration_id=INTEGRATION,
            event_id=event_id,
            error_class="IntegrityError",
            body="{}",
            dead_at=dead_at,
        )
        session.add(row)
        session.flush()
        return row.id


def parked_event(sessions: sessionmaker[Session], event_id: str) -> None:
    with sessions.begin() as session:
        session.add(
            ParkedEvent(integration_id=INTEGRATION, event_id=event_id, parked_at=NOW, message={})
        )


def sync_error(
    sessions: sessionmaker[Session], source_id: str, *, resolved: bool, last_seen: Any
) -> None:
    with sessions.begin() as session:
        session.add(
            SyncError(
                integration_id=INTEGRATION,
                module="projects",
                source_id=source_id,
                reason="related_project_missing",
                message="…",
                resolved=resolved,
                first_seen=last_seen,
                last_seen=last_seen,
            )
        )


def error_ids(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(SyncError.source_id)))


# -- the event-id ledger -------------------------------------------------------------------


def test_ledger_ids_claimed_before_the_retention_go_and_recent_ones_stay(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    claim(sessions, "old", at=NOW - (LEDGER_DAYS + 15) * DAY)
    claim(sessions, "recent", at=NOW - 3 * DAY)

    result = pruned(engine, settings)

    assert in_ledger(sessions) == {"recent"}
    assert result.removed("processed_events") == 1


def test_an_event_id_claimed_again_within_the_retention_is_a_duplicate(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    """A redelivery weeks later, its first claim in an older week's partition."""
    first = NOW - 20 * DAY
    weeks_from(engine, first)
    assert claim(sessions, "e-1", at=first) == {"e-1"}
    pruned(engine, settings)

    assert claim(sessions, "e-1") == set()
    assert claim(sessions, "e-1", "e-2") == {"e-2"}
    if is_postgresql(engine):
        with engine.connect() as connection:
            held_in = connection.execute(
                text("SELECT tableoid::regclass::text FROM processed_events WHERE event_id = 'e-1'")
            ).scalars()
            assert list(held_in) == [weekly_name(week_start(first))]


@only_postgresql
def test_two_workers_claiming_one_event_id_at_once_claim_it_once(
    sessions: sessionmaker[Session],
) -> None:
    claims = overlapping(
        sessions,
        lambda session: claim_events(session, [(INTEGRATION, "e-1")]),
        lambda session: claim_events(session, [(INTEGRATION, "e-1")]),
    )
    assert claims == [{(INTEGRATION, "e-1")}, set()]
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ProcessedEvent)) == 1


@only_postgresql
def test_two_batches_with_one_event_id_for_different_records_apply_it_once(
    sessions: sessionmaker[Session],
) -> None:
    """Their dependency locks do not meet (other records): the event-id lock taken with
    them makes the second batch wait, and it finds the id claimed."""
    outcomes = overlapping(
        sessions,
        lambda session: apply_batch(session, [message(project("P1"), INTEGRATION, "e-1")]),
        lambda session: apply_batch(session, [message(project("P2"), INTEGRATION, "e-1")]),
    )
    assert [[o.status for o in batch] for batch in outcomes] == [["applied"], ["duplicate"]]


def overlapping(
    sessions: sessionmaker[Session],
    first: Callable[[Session], Any],
    second: Callable[[Session], Any],
) -> list[Any]:
    """``first`` in an open transaction; ``second`` in another until it is done or waits
    for a lock; commit ``first``, then ``second``. Their results, in that order."""
    results: list[Any] = []
    pids: list[int] = []
    errors: list[BaseException] = []
    later: list[Any] = []

    def run_second() -> None:
        try:
            with sessions.begin() as session:
                pids.append(int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
                later.append(second(session))
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    def waiting() -> bool:
        with sessions() as session:
            kind = session.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": pids[0]},
            ).scalar()
        return kind == "Lock"

    thread = threading.Thread(target=run_second)
    with sessions.begin() as session:
        results.append(first(session))
        thread.start()
        wait_until(lambda: not thread.is_alive() or (pids and waiting()))
        assert thread.is_alive(), "the second claim did not wait for the first"
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors
    return results + later


@only_postgresql
def test_the_prune_drops_whole_old_weeks_of_the_ledger_instead_of_deleting_rows(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    old = NOW - 70 * DAY
    weeks_from(engine, old)
    claim(sessions, "a", "b", at=old)
    claim(sessions, "c", at=old + 7 * DAY)
    claim(sessions, "recent", at=NOW - DAY)
    old_weeks = {weekly_name(week_start(old)), weekly_name(week_start(old + 7 * DAY))}
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement.lstrip())

    event.listen(engine, "before_cursor_execute", note)
    result = pruned(engine, settings)
    event.remove(engine, "before_cursor_execute", note)

    (ledger,) = [t for t in result.tables if t.table == "processed_events"]
    assert old_weeks <= set(ledger.dropped)
    assert not old_weeks & partition_names(engine)
    assert ledger.removed == 3
    assert in_ledger(sessions) == {"recent"}
    # No row of the ledger was deleted but from its default partition.
    ledger_deletes = [s for s in sent if s.startswith("DELETE FROM processed_events")]
    assert all(s.startswith("DELETE FROM processed_events_default ") for s in ledger_deletes)


@only_postgresql
def test_a_week_is_dropped_only_once_all_of_it_is_past_the_retention(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    straddling = week_start(NOW - LEDGER_DAYS * DAY)  # its last days are within
    weeks_from(engine, straddling)
    claim(sessions, "early-in-the-week", at=straddling + timedelta(hours=1))

    pruned(engine, settings)

    assert weekly_name(straddling) in partition_names(engine)
    assert claim(sessions, "early-in-the-week") == set()


@only_postgresql
def test_the_prune_makes_the_weeks_ahead_and_moves_their_rows_out_of_the_default_partition(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    later = NOW + 70 * DAY  # no week made that far ahead yet: the default partition
    claim(sessions, "early", at=later)

    result = pruned(engine, settings, now=later)

    week = weekly_name(week_start(later))
    assert week in result.created
    assert weekly_name(week_start(later) + 28 * DAY) in result.created
    with engine.connect() as connection:
        held_in = connection.execute(text("SELECT tableoid::regclass::text FROM processed_events"))
        assert list(held_in.scalars()) == [week]


@only_postgresql
def test_the_worker_sync_loop_makes_missing_weeks_of_the_ledger(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    later = NOW + 70 * DAY

    class NoPulls:
        def run_next(self) -> None:
            return None

    SyncScheduler(NoPulls(), sessions, settings, now=lambda: later).tick()  # type: ignore[arg-type]

    assert weekly_name(week_start(later)) in partition_names(engine)


@only_postgresql
def test_a_partition_change_that_finds_the_ledger_locked_gives_up_with_partition_busy(
    sessions: sessionmaker[Session],
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_partitions_module, "DDL_LOCK_TIMEOUT", "50ms")
    monkeypatch.setattr(retention_module, "DDL_ATTEMPTS", 2)
    weeks_from(engine, NOW - 70 * DAY)
    with engine.connect() as reader:  # a batch in progress, reading the ledger
        reader.execute(text("SELECT count(*) FROM processed_events"))
        with pytest.raises(PartitionBusy, match="run the prune again"):
            pruned(engine, settings)
        reader.rollback()
    assert weekly_name(week_start(NOW - 70 * DAY)) in partition_names(engine)


# -- ids a waiting copy holds ------------------------------------------------------------


@pytest.mark.parametrize("holder", ["dead letter", "parked event"])
def test_an_id_a_waiting_copy_holds_stays_in_the_ledger_past_its_retention(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings, holder: str
) -> None:
    claim(sessions, "applied-then-held", at=NOW - 200 * DAY)
    if holder == "dead letter":
        dead_letter(sessions, "applied-then-held")
    else:
        parked_event(sessions, "applied-then-held")

    result = pruned(engine, settings)

    assert claim(sessions, "applied-then-held") == set()  # its replay is a duplicate
    assert result.tables[0].renewed == 1


def test_a_held_id_stays_the_redelivery_window_after_its_dead_letter_is_replayed(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    claim(sessions, "e-1", at=NOW - 200 * DAY)
    letter = dead_letter(sessions, "e-1")
    pruned(engine, settings)
    with sessions.begin() as session:  # replayed: its row goes, its copy is on its way
        session.execute(DeadLetter.__table__.delete().where(DeadLetter.id == letter))

    pruned(engine, settings, now=NOW + (WINDOW_DAYS - 1) * DAY)
    assert "e-1" in in_ledger(sessions)
    pruned(engine, settings, now=NOW + (LEDGER_DAYS + 8) * DAY)
    assert "e-1" not in in_ledger(sessions)


# -- the bookkeeping tables ----------------------------------------------------------------


def test_resolved_errors_last_seen_before_the_retention_go_and_recent_ones_stay(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    sync_error(sessions, "resolved-old", resolved=True, last_seen=NOW - 91 * DAY)
    sync_error(sessions, "resolved-recent", resolved=True, last_seen=NOW - 89 * DAY)

    result = pruned(engine, settings)

    assert error_ids(sessions) == {"resolved-recent"}
    assert result.removed("sync_errors") == 1


def test_open_errors_and_unreplayed_dead_letters_survive_any_prune(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    sync_error(sessions, "open-for-years", resolved=False, last_seen=NOW - 2000 * DAY)
    dead_letter(sessions, "waiting-for-years", dead_at=NOW - 2000 * DAY)

    pruned(engine, settings)

    assert error_ids(sessions) == {"open-for-years"}
    assert count(sessions, DeadLetter) == 1


def test_the_edit_audit_of_a_gone_dead_letter_goes_after_its_retention_a_waiting_ones_stays(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    waiting = dead_letter(sessions, "waiting")
    with sessions.begin() as session:
        for letter, edited_at in ((waiting, 400), (9001, 400), (9002, 300)):
            session.add(
                DeadLetterEdit(
                    dead_letter_id=letter,
                    event_id=f"edit-of-{letter}",
                    original="{}",
                    edited="{}",
                    edited_by="ops",
                    edited_at=NOW - edited_at * DAY,
                )
            )

    result = pruned(engine, settings)

    with sessions() as session:
        kept = set(session.scalars(select(DeadLetterEdit.dead_letter_id)))
    assert kept == {waiting, 9002}
    assert result.removed("dead_letter_edits") == 1


def test_finished_runs_before_the_retention_go_but_each_integrations_newest_stays(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    with sessions.begin() as session:
        for kind, finished_days_ago in (("old", 200), ("newest", 100), ("open", None)):
            finished = None if finished_days_ago is None else NOW - finished_days_ago * DAY
            session.add(
                SyncRun(
                    integration_id=INTEGRATION,
                    kind=kind,
                    started_at=NOW - 300 * DAY,
                    finished_at=finished,
                    outcome="succeeded" if finished else "running",
                )
            )
            session.flush()  # ids in that order

    result = pruned(engine, settings)

    with sessions() as session:
        assert set(session.scalars(select(SyncRun.kind))) == {"newest", "open"}
    assert result.removed("sync_runs") == 1


def test_finished_runs_within_the_retention_stay(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    with sessions.begin() as session:
        for kind, finished_days_ago in (("within", 89), ("newest", 1)):
            session.add(
                SyncRun(
                    integration_id=INTEGRATION,
                    kind=kind,
                    started_at=NOW - finished_days_ago * DAY,
                    finished_at=NOW - finished_days_ago * DAY,
                    outcome="succeeded",
                )
            )
            session.flush()

    pruned(engine, settings)

    with sessions() as session:
        assert set(session.scalars(select(SyncRun.kind))) == {"within", "newest"}


# -- how it runs -------------------------------------------------------------------------


def old_rows_everywhere(sessions: sessionmaker[Session], engine: Engine) -> None:
    weeks_from(engine, NOW - 70 * DAY)
    claim(sessions, "old-1", "old-2", at=NOW - 70 * DAY)
    claim(sessions, "recent", at=NOW)
    sync_error(sessions, "resolved-old", resolved=True, last_seen=NOW - 100 * DAY)
    with sessions.begin() as session:
        for days in (300, 200, 100):
            session.add(
                SyncRun(
                    integration_id=INTEGRATION,
                    kind="instant",
                    started_at=NOW - days * DAY,
                    finished_at=NOW - days * DAY,
                    outcome="succeeded",
                )
            )
            session.flush()


def table_counts(sessions: sessionmaker[Session]) -> list[int]:
    return [count(sessions, m) for m in (ProcessedEvent, SyncError, SyncRun)]


def test_a_dry_run_counts_what_would_go_and_deletes_nothing(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    old_rows_everywhere(sessions, engine)
    partitions_before = partition_names(engine) if is_postgresql(engine) else set()
    before = table_counts(sessions)

    result = pruned(engine, settings, dry_run=True)

    assert table_counts(sessions) == before
    assert (partition_names(engine) if is_postgresql(engine) else set()) == partitions_before
    removed = {t.table: t.removed for t in result.tables}
    assert removed == {
        "processed_events": 2,
        "sync_errors": 1,
        "dead_letter_edits": 0,
        "sync_runs": 2,
    }
    assert removed == {t.table: t.removed for t in pruned(engine, settings).tables}


def test_the_prune_deletes_in_chunks_of_the_given_size(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    for n in range(5):
        sync_error(sessions, f"resolved-{n}", resolved=True, last_seen=NOW - 100 * DAY)
    deletes: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().startswith("DELETE FROM sync_errors"):
            deletes.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    result = pruned(engine, settings, chunk_rows=2)
    event.remove(engine, "before_cursor_execute", note)

    assert result.removed("sync_errors") == 5
    assert len(deletes) == 3  # 2, 2, then 1: a short chunk ends it


def test_two_prunes_at_once_remove_each_row_once(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    old_rows_everywhere(sessions, engine)
    start = threading.Barrier(2)
    results: list[PruneResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(pruned(engine, settings, chunk_rows=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(r.removed("processed_events") for r in results) == 2
    assert sum(r.removed("sync_errors") for r in results) == 1
    assert sum(r.removed("sync_runs") for r in results) == 2
    assert table_counts(sessions) == [1, 0, 1]


@only_postgresql
def test_a_prune_that_finds_another_running_does_nothing(
    sessions: sessionmaker[Session], engine: Engine, settings: Settings
) -> None:
    old_rows_everywhere(sessions, engine)
    before = table_counts(sessions)
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:space, 0)"), {"space": MAINTENANCE_LOCK_SPACE})
        result = pruned(engine, settings)
        other.rollback()
    assert result.skipped
    assert table_counts(sessions) == before


# -- autovacuum -----------------------------------------------------------------------------


@only_postgresql
def test_ledger_partitions_and_the_hot_tables_are_vacuumed_sooner_than_by_default(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    weeks_from(engine, NOW + 70 * DAY)  # made after the migration too
    with engine.connect() as connection:
        options = dict(
            connection.execute(
                text(
                    "SELECT c.relname, c.reloptions FROM pg_class c "
                    "WHERE c.oid = ANY(ARRAY(SELECT inhrelid FROM pg_inherits "
                    "  WHERE inhparent = to_regclass('processed_events'))) "
                    "OR c.oid IN (to_regclass('timesheets'), to_regclass('integration_counts'), "
                    "  to_regclass('integration_activity'))"
                )
            ).all()
        )
    ledger = {name: opts for name, opts in options.items() if name.startswith("processed")}
    assert weekly_name(week_start(NOW + 70 * DAY)) in ledger
    assert all("autovacuum_vacuum_insert_scale_factor=0.02" in o for o in ledger.values())
    assert "autovacuum_vacuum_scale_factor=0.02" in options["timesheets"]
    assert "autovacuum_vacuum_threshold=1000" in options["integration_counts"]
    assert "fillfactor=70" in options["integration_activity"]


# -- the command ----------------------------------------------------------------------------


def environment(engine: Engine, tmp_path: Path) -> dict[str, str]:
    """BILLSYNC_* variables pointing the CLI at ``engine``'s database (and schema)."""
    url = engine.url
    if is_postgresql(engine):
        url = url.update_query_dict({"options": "-csearch_path=test_retention_check"})
    return {
        "BILLSYNC_DATABASE_URL": url.render_as_string(hide_password=False),
        "BILLSYNC_DATA_DIR": str(tmp_path),
    }


def billsync_db_prune(engine: Engine, tmp_path: Path, *options: str) -> Result:
    return CliRunner().invoke(cli, ["db", "prune", *options], env=environment(engine, tmp_path))


def test_db_prune_prints_what_each_table_lost_as_json(
    sessions: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    claim(sessions, "old", at=NOW - 100 * DAY)
    sync_error(sessions, "resolved-old", resolved=True, last_seen=NOW - 100 * DAY)

    result = billsync_db_prune(engine, tmp_path)

    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["dry_run"] is False
    assert {name: t["removed"] for name, t in printed["tables"].items()} == {
        "processed_events": 1,
        "sync_errors": 1,
        "dead_letter_edits": 0,
        "sync_runs": 0,
    }
    assert in_ledger(sessions) == set()


def test_db_prune_dry_run_prints_the_counts_and_deletes_nothing(
    sessions: sessionmaker[Session], engine: Engine, tmp_path: Path
) -> None:
    claim(sessions, "old", at=NOW - 100 * DAY)

    result = billsync_db_prune(engine, tmp_path, "--dry-run")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tables"]["processed_events"]["removed"] == 1
    assert in_ledger(sessions) == {"old"}


def test_db_prune_of_a_database_not_migrated_exits_non_zero_saying_what_to_do(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    result = billsync_db_prune(fresh_engine, tmp_path)

    assert result.exit_code == 1
    assert "Run `billsync db upgrade`" in result.output


@only_postgresql
def test_db_prune_exits_non_zero_when_a_ledger_partition_stays_locked(
    sessions: sessionmaker[Session],
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ledger_partitions_module, "DDL_LOCK_TIMEOUT", "50ms")
    monkeypatch.setattr(retention_module, "DDL_ATTEMPTS", 1)
    weeks_from(engine, NOW - 70 * DAY)
    with engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM processed_events"))
        result = billsync_db_prune(engine, tmp_path)
        reader.rollback()

    assert result.exit_code == 1
    assert "could not drop the ledger partition" in result.output
    assert "run the prune again" in result.output
