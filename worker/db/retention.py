"""Bounded storage: ``billsync db prune`` removes what is older than its retention.

What grows without bound, and what is kept (the ``BILLSYNC_RETAIN_*`` settings):

- ``processed_events``, the event-id ledger: ids claimed more than
  ``retain_processed_events_days`` ago. On PostgreSQL whole weeks are dropped (see
  ``worker.db.partitions``); rows in the default partition, and on SQLite all rows, are
  deleted. An id a dead letter or a parked event still holds is renewed first (below).
- ``sync_errors``: resolved rows last seen more than ``retain_resolved_errors_days`` ago.
  Open errors are never pruned.
- ``dead_letter_edits``: the edit audit of dead letters replayed or deleted more than
  ``retain_dead_letter_audit_days`` after the edit. A waiting dead letter keeps its audit,
  and dead letters themselves are never pruned (a replay or a delete removes them).
- ``sync_runs``: runs finished more than ``retain_sync_runs_days`` ago, except the newest
  finished run of each integration (status shows it as the last sync). Open runs have
  no ``finished_at`` and are never pruned.

Replayed dead letters and republished parked events leave nothing to prune: each row is
deleted once the broker confirmed its republish.

**Ids held by a waiting copy.** A dead letter or a parked event may be a copy of an
event already applied (a delivery-limit dead letter of a batch that committed but was
never acked, a replay cut off after its publish was confirmed, a portal's retry parked
while the integration was disabled), and it may wait for ever. So before removing
anything, the prune renews the ledger ids they hold whose newest claim is older than
``retain_processed_events_days - redelivery_window_days``: on PostgreSQL a copy of the
row claimed now, on SQLite the row itself. A held id therefore stays in the ledger
while its copy waits, and at least ``redelivery_window_days`` after the last prune that
saw it held: the window in which a replayed or republished copy is still on its way.

**Safe beside the workers and itself.** Every delete is a chunk of at most
``chunk_rows`` rows in a transaction of its own, chosen with ``FOR UPDATE SKIP LOCKED``
on PostgreSQL (a row a worker is changing is left for the next prune), so nothing holds
locks for long and an interrupted prune keeps what it removed. Each deleted row is
counted by the one transaction that deleted it, so two prunes at once never count a
row twice; on PostgreSQL a second prune finds the first one's session lock and does
nothing (``PruneResult.skipped``), so partitions are changed by one prune at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    delete,
    exists,
    func,
    select,
    text,
    tuple_,
    union,
    update,
)
from sqlalchemy.exc import OperationalError

from worker.db.base import utcnow
from worker.db.partitions import (
    DDL_LOCK_TIMEOUT,
    DEFAULT_PARTITION,
    LEDGER,
    MAINTENANCE_LOCK_SPACE,
    ensure_ledger_partitions,
    ledger_is_partitioned,
    ledger_partitions,
    ledger_table,
    lock_maintenance,
)
from worker.db.sync_models import (
    DeadLetter,
    DeadLetterEdit,
    ParkedEvent,
    ProcessedEvent,
    SyncError,
    SyncRun,
)
from worker.errors import Unavailable
from worker.settings import Settings

__all__ = ["CHUNK_ROWS", "PartitionBusy", "PruneProgress", "PruneResult", "Pruned", "prune"]

log = logging.getLogger(__name__)

# Rows deleted per transaction: small enough that no chunk holds locks for long.
CHUNK_ROWS = 5_000
# Tries of a partition change that found the ledger locked (each waits DDL_LOCK_TIMEOUT).
DDL_ATTEMPTS = 3
_LOCK_NOT_AVAILABLE = "55P03"


class PartitionBusy(Unavailable):
    """A ledger partition could not be created or dropped: its lock stayed taken (a long
    transaction held the ledger). Nothing is lost; run the prune again."""


@dataclass
class Pruned:
    """What one table lost (or would lose, in a dry run)."""

    table: str
    removed: int = 0
    dropped: list[str] = field(default_factory=list)  # whole partitions (the ledger)
    renewed: int = 0  # ledger ids a dead letter or parked event holds, claimed anew


@dataclass
class PruneResult:
    """What a prune did (or would do): per table, and the ledger weeks it made ahead."""

    now: datetime
    dry_run: bool
    tables: list[Pruned] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # ledger partitions made ahead
    skipped: bool = False  # another prune was running: nothing was done

    def removed(self, table_name: str) -> int:
        """The rows ``table_name`` lost (0 for a table the prune did not get to)."""
        return sum(t.removed for t in self.tables if t.table == table_name)


PruneProgress = Callable[[Pruned], None]


def prune(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    on_progress: PruneProgress | None = None,
) -> PruneResult:
    """Remove what is older than its retention (see the module docstring); with
    ``dry_run`` only count it. ``now`` is the caller's clock (tests move it).

    Raises PartitionBusy when a ledger partition stayed locked, and whatever the
    database raises; what was removed before stays removed.
    """
    now = now or utcnow()
    result = PruneResult(now=now, dry_run=dry_run)
    show = on_progress or (lambda _pruned: None)
    with engine.connect() as connection:
        locked = False
        if connection.dialect.name == "postgresql" and not dry_run:
            locked = _try_prune_lock(connection)
            if not locked:
                result.skipped = True
                return result
        try:
            if not dry_run:
                result.created = _ensure_partitions(connection, now)
            work = (connection, settings, now, dry_run, chunk_rows, show)
            result.tables.append(_prune_ledger(*work))
            result.tables.extend(_prune_bookkeeping(*work))
        finally:
            if locked:
                try:
                    _release_prune_lock(connection)
                except Exception:  # a lost connection took the lock with its session
                    log.warning("could not release the prune's lock", exc_info=True)
    log.info(
        "pruned" if not dry_run else "prune dry run",
        extra={"fields": {t.table: t.removed for t in result.tables}},
    )
    return result


# -- one prune at a time (PostgreSQL) --------------------------------------------------


def _try_prune_lock(connection: Connection) -> bool:
    """The session lock of the prune; held across its many transactions."""
    taken = connection.execute(
        text("SELECT pg_try_advisory_lock(:space, 0)"), {"space": MAINTENANCE_LOCK_SPACE}
    ).scalar()
    connection.commit()
    return bool(taken)


def _release_prune_lock(connection: Connection) -> None:
    if connection.in_transaction():  # an error left it open
        connection.rollback()
    # A pooled connection keeps its session locks: released here, not at close.
    connection.execute(
        text("SELECT pg_advisory_unlock(:space, 0)"), {"space": MAINTENANCE_LOCK_SPACE}
    )
    connection.commit()


# -- the ledger ------------------------------------------------------------------------


def _ensure_partitions(connection: Connection, now: datetime) -> list[str]:
    created: list[str] = []

    def make() -> None:
        created.extend(ensure_ledger_partitions(connection, now))

    _ddl(connection, make, "create the ledger's partitions ahead")
    return created


def _prune_ledger(
    connection: Connection,
    settings: Settings,
    now: datetime,
    dry_run: bool,
    chunk_rows: int,
    show: PruneProgress,
) -> Pruned:
    cutoff = now - timedelta(days=settings.retain_processed_events_days)
    renew_before = now - timedelta(
        days=settings.retain_processed_events_days - settings.redelivery_window_days
    )
    pruned = Pruned(LEDGER)
    show(pruned)
    with connection.begin():
        partitioned = ledger_is_partitioned(connection)
        partitions = ledger_partitions(connection) if partitioned else []
    pruned.renewed = _renew_held(connection, now, renew_before, partitioned, dry_run)
    if not partitioned:
        ledger = ProcessedEvent.__table__
        old = [ledger.c.processed_at < cutoff]
        if dry_run:  # the real prune renews the held rows instead of deleting them
            old.append(~tuple_(ledger.c.integration_id, ledger.c.event_id).in_(_held()))
        keys = [ledger.c.integration_id, ledger.c.event_id]
        _remove(connection, ledger, keys, old, dry_run, chunk_rows, pruned, show)
        return pruned
    for partition in partitions:
        if partition.is_default or partition.upper is None or partition.upper > cutoff:
            continue
        # Counted before: nothing is claimed into a week that is over.
        with connection.begin():
            rows = connection.execute(text(f"SELECT count(*) FROM {partition.name}")).scalar()
        if not dry_run:
            _ddl(
                connection,
                partial(_drop, connection, partition.name),
                f"drop the ledger partition {partition.name}",
            )
        pruned.removed += int(rows or 0)
        pruned.dropped.append(partition.name)
        show(pruned)
    default = ledger_table(DEFAULT_PARTITION)
    keys = [default.c.integration_id, default.c.event_id, default.c.processed_at]
    old = [default.c.processed_at < cutoff]
    _remove(connection, default, keys, old, dry_run, chunk_rows, pruned, show)
    return pruned


def _held() -> Any:
    """(integration_id, event_id) of every dead letter and parked event."""
    letters = select(DeadLetter.integration_id, DeadLetter.event_id).where(
        DeadLetter.integration_id.is_not(None), DeadLetter.event_id.is_not(None)
    )
    return union(letters, select(ParkedEvent.integration_id, ParkedEvent.event_id))


def _renew_held(
    connection: Connection, now: datetime, before: datetime, partitioned: bool, dry_run: bool
) -> int:
    """Claim anew the held ids whose newest claim is older than ``before``; how many."""
    ledger: Any = ProcessedEvent.__table__
    with connection.begin():
        if partitioned:
            # A copy claimed now: a row cannot move to another week's partition in place.
            params = {"now": now, "before": before}
            if dry_run:
                return int(connection.execute(_COUNT_STALE_HELD, params).scalar() or 0)
            return _rowcount(connection.execute(_RENEW_HELD, params))
        stale = (
            ledger.c.processed_at < before,
            tuple_(ledger.c.integration_id, ledger.c.event_id).in_(_held()),
        )
        if dry_run:
            counted = connection.execute(select(func.count()).select_from(ledger).where(*stale))
            return int(counted.scalar() or 0)
        return _rowcount(connection.execute(update(ledger).where(*stale).values(processed_at=now)))


# Driven by the held ids (few), each looked up in every partition's primary key.
_STALE_HELD = """
    FROM (
        SELECT integration_id, event_id FROM dead_letters
        WHERE integration_id IS NOT NULL AND event_id IS NOT NULL
        UNION
        SELECT integration_id, event_id FROM parked_events
    ) AS held
    WHERE EXISTS (
        SELECT 1 FROM processed_events p
        WHERE p.integration_id = held.integration_id AND p.event_id = held.event_id
    )
    AND NOT EXISTS (
        SELECT 1 FROM processed_events p
        WHERE p.integration_id = held.integration_id AND p.event_id = held.event_id
          AND p.processed_at >= CAST(:before AS timestamptz)
    )
"""
_COUNT_STALE_HELD = text(f"SELECT count(*) {_STALE_HELD}")
_RENEW_HELD = text(
    "INSERT INTO processed_events (integration_id, event_id, processed_at) "
    f"SELECT held.integration_id, held.event_id, CAST(:now AS timestamptz) {_STALE_HELD} "
    "ON CONFLICT DO NOTHING"
)


def _drop(connection: Connection, name: str) -> None:
    lock_maintenance(connection)
    connection.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")


def _ddl(connection: Connection, change: Callable[[], None], what: str) -> None:
    """Run a partition change in a transaction, again when it found the ledger locked
    (each try waits DDL_LOCK_TIMEOUT at most, so the workers' claims never queue
    behind it for long)."""
    for attempt in range(1, DDL_ATTEMPTS + 1):
        try:
            with connection.begin():
                change()
            return
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            if attempt == DDL_ATTEMPTS:
                raise PartitionBusy(
                    f"could not {what}: the ledger stayed locked ({DDL_ATTEMPTS} tries of "
                    f"{DDL_LOCK_TIMEOUT} each) by a long transaction; run the prune again"
                ) from exc
            log.warning("ledger partition locked, trying again", extra={"fields": {"do": what}})


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# -- the bookkeeping tables ------------------------------------------------------------


def _prune_bookkeeping(
    connection: Connection,
    settings: Settings,
    now: datetime,
    dry_run: bool,
    chunk_rows: int,
    show: PruneProgress,
) -> list[Pruned]:
    days = timedelta(days=1)
    errors = SyncError.__table__
    edits = DeadLetterEdit.__table__
    letters = DeadLetter.__table__
    runs = SyncRun.__table__
    newer = runs.alias("newer")
    plans: list[tuple[Any, list[ColumnElement[bool]]]] = [
        (
            errors,
            [
                errors.c.resolved.is_(True),
                errors.c.last_seen < now - days * settings.retain_resolved_errors_days,
            ],
        ),
        (
            edits,
            [
                edits.c.edited_at < now - days * settings.retain_dead_letter_audit_days,
                ~exists().where(letters.c.id == edits.c.dead_letter_id),
            ],
        ),
        (
            runs,
            [
                runs.c.finished_at < now - days * settings.retain_sync_runs_days,
                exists().where(
                    newer.c.integration_id == runs.c.integration_id,
                    newer.c.id > runs.c.id,
                    newer.c.finished_at.is_not(None),
                ),
            ],
        ),
    ]
    done = []
    for target, conditions in plans:
        pruned = Pruned(target.name)
        show(pruned)
        _remove(connection, target, [target.c.id], conditions, dry_run, chunk_rows, pruned, show)
        done.append(pruned)
    return done


def _remove(
    connection: Connection,
    target: Any,
    keys: Sequence[Any],
    conditions: Sequence[ColumnElement[bool]],
    dry_run: bool,
    chunk_rows: int,
    pruned: Pruned,
    show: PruneProgress,
) -> None:
    """Delete the rows of ``target`` matching ``conditions``, ``chunk_rows`` per
    transaction, until a chunk comes back short; or, in a dry run, count them."""
    if dry_run:
        with connection.begin():
            counted = connection.execute(
                select(func.count()).select_from(target).where(*conditions)
            ).scalar()
        pruned.removed += int(counted or 0)
        show(pruned)
        return
    postgresql = connection.dialect.name == "postgresql"
    while True:
        # correlate(None): the pick reads the table itself, not the DELETE's row.
        pick = select(*keys).where(*conditions).limit(chunk_rows).correlate(None)
        if postgresql:
            pick = pick.with_for_update(skip_locked=True)
        chosen = tuple_(*keys).in_(pick) if len(keys) > 1 else keys[0].in_(pick)
        with connection.begin():
            removed = _rowcount(connection.execute(delete(target).where(chosen)))
        pruned.removed += removed
        show(pruned)
        if removed < chunk_rows:
            return
