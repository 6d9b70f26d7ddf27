"""The processed-event ledger's weekly partitions on PostgreSQL (migration 0013).

``processed_events`` is range-partitioned by ``processed_at`` (when the id was claimed),
so ``billsync db prune`` drops a whole old week instead of deleting its rows one by one
(no dead rows, no vacuum of them, no long delete). SQLite keeps the plain table.

Partitions are named by what they hold, and this module reads their ranges from the
names (migration 0013 makes them with the same names):

- ``processed_events_pYYYYMMDD``: the week from that Monday 00:00 UTC, seven days;
- ``processed_events_before_YYYYMMDD``: every row claimed before that day (what the
  migration copied from an older ledger, dropped whole once it is all past retention);
- ``processed_events_default``: the safety net, so that a claim never fails for want
  of a partition (the prune and the worker's sync loop create the weeks ahead; rows
  found here are moved into their week when it is created, and pruned row by row).

Why weeks: a claim cannot name its partition (an event id says nothing about when it
was first claimed), so its lookup probes every partition's index; with the default
35-day retention that is about ten partitions (five weeks kept, the current one, four
ahead, the default), where days would be some forty. A week also means one drop, and
its brief exclusive lock on the ledger, a week, at the price of keeping rows up to
seven days past their retention.

Creating a partition uses ``ATTACH PARTITION``, which locks the ledger only against
other schema changes (plus the default partition, which stays small); dropping one
needs the ledger's exclusive lock for an instant. Both wait at most
``DDL_LOCK_TIMEOUT`` for it, so a long batch makes them give up (and try again later)
rather than keep the workers' claims queued behind them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    TableClause,
    column,
    delete,
    insert,
    select,
    table,
    text,
)

from worker.db.base import UTCDateTime

__all__ = [
    "DDL_LOCK_TIMEOUT",
    "DEFAULT_PARTITION",
    "LEDGER",
    "LEDGER_STORAGE",
    "LedgerPartition",
    "MAINTENANCE_LOCK_SPACE",
    "PARTITIONS_AHEAD",
    "WEEK",
    "ensure_ledger_partitions",
    "include_in_autogenerate",
    "is_ledger_partition",
    "ledger_is_partitioned",
    "ledger_table",
    "ledger_partitions",
    "lock_maintenance",
    "week_start",
    "weekly_name",
]

LEDGER = "processed_events"
DEFAULT_PARTITION = f"{LEDGER}_default"
WEEK = timedelta(days=7)
# Weeks made ahead of the current one: a prune or a worker may miss a month.
PARTITIONS_AHEAD = 4
# How long partition DDL waits for its locks before giving up (see the docstring).
DDL_LOCK_TIMEOUT = "2s"
# Autovacuum of every ledger partition (the same as migration 0013's). The ledger is
# insert-only: by default a partition is vacuumed only after it grew by a fifth, and
# until then its visibility map is stale, so the claim's probe of its primary key cannot
# be index-only; analyzing sooner keeps the planner's row counts of the week being filled
# from calling it empty.
LEDGER_STORAGE = (
    "autovacuum_vacuum_insert_scale_factor = 0.02, "
    "autovacuum_vacuum_scale_factor = 0.02, "
    "autovacuum_analyze_scale_factor = 0.02"
)
# First key of the two-key advisory locks of partition maintenance ("bspm"): apart from
# the one-key locks of migrations and dependency locks, and from the event-id locks'
# space (worker.sync.upsert).
MAINTENANCE_LOCK_SPACE = 0x6273706D

_NAME = re.compile(rf"^{LEDGER}_(?:(p)(\d{{8}})|(before)_(\d{{8}})|(default))$")


@dataclass(frozen=True)
class LedgerPartition:
    """One partition of the ledger and the claim times it holds: ``[lower, upper)``,
    ``lower`` None for "since ever"; the default partition has neither."""

    name: str
    lower: datetime | None
    upper: datetime | None

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_PARTITION

    def overlaps(self, start: datetime, end: datetime) -> bool:
        if self.is_default or self.upper is None:
            return False
        return start < self.upper and (self.lower is None or self.lower < end)


def week_start(moment: datetime) -> datetime:
    """Monday 00:00 UTC of ``moment``'s week."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def weekly_name(start: datetime) -> str:
    return f"{LEDGER}_p{start:%Y%m%d}"


def is_ledger_partition(name: str) -> bool:
    """Whether ``name`` is one of the ledger's partitions (not a table of the models)."""
    return _NAME.match(name) is not None


def include_in_autogenerate(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic's ``include_name``: compare everything but the ledger's partitions, which
    no model declares (the prune and the worker create and drop them)."""
    return not (type_ == "table" and name is not None and is_ledger_partition(name))


def _parse(name: str) -> LedgerPartition | None:
    found = _NAME.match(name)
    if found is None:
        return None
    if found.group(5):
        return LedgerPartition(name, None, None)
    day = datetime.strptime(found.group(2) or found.group(4), "%Y%m%d").replace(tzinfo=UTC)
    if found.group(1):
        return LedgerPartition(name, day, day + WEEK)
    return LedgerPartition(name, None, day)


def ledger_is_partitioned(connection: Connection) -> bool:
    """True on PostgreSQL once migration 0013 partitioned the ledger."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": LEDGER}
    ).scalar()
    return kind == "p"


def ledger_partitions(connection: Connection) -> list[LedgerPartition]:
    """The ledger's partitions of billsync's naming, oldest first, the default last."""
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:name)"
        ),
        {"name": LEDGER},
    ).scalars()
    found = [p for p in (_parse(n) for n in names) if p is not None]
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(found, key=lambda p: (p.is_default, p.upper or epoch))


def lock_maintenance(connection: Connection) -> None:
    """In the connection's transaction: wait at most DDL_LOCK_TIMEOUT for a lock, and
    hold the partition-maintenance lock (one process changes the partitions at a time)."""
    connection.execute(text(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
    connection.execute(
        text("SELECT pg_advisory_xact_lock(:space, 1)"), {"space": MAINTENANCE_LOCK_SPACE}
    )


def ensure_ledger_partitions(
    connection: Connection, now: datetime, ahead: int = PARTITIONS_AHEAD
) -> list[str]:
    """Create the weekly partitions of ``now``'s week and the ``ahead`` weeks after it
    that are missing; return their names. Rows the default partition holds for such a
    week move into it.

    Run it in a transaction of its own: it sets a short ``lock_timeout`` in it (a
    timed-out lock raises, and the weeks are made by the next call). Nothing is locked
    when every week exists, the usual case: a catalog read.
    """
    if not ledger_is_partitioned(connection):
        return []
    wanted = [week_start(now) + WEEK * n for n in range(ahead + 1)]
    if not _missing(ledger_partitions(connection), wanted):
        return []
    lock_maintenance(connection)
    existing = ledger_partitions(connection)  # another process may have made some meanwhile
    has_default = any(p.is_default for p in existing)
    created = []
    for start in _missing(existing, wanted):
        _create_week(connection, start, has_default)
        created.append(weekly_name(start))
    return created


def _missing(existing: Sequence[LedgerPartition], wanted: list[datetime]) -> list[datetime]:
    # A week another partition already covers (a "before" one) is not made again.
    return [s for s in wanted if not any(p.overlaps(s, s + WEEK) for p in existing)]


def _create_week(connection: Connection, start: datetime, has_default: bool) -> None:
    name = weekly_name(start)
    low, high = _literal(start), _literal(start + WEEK)
    # As written (exec_driver_sql): DDL binds nothing, and its literals are ours.
    connection.exec_driver_sql(
        f"CREATE TABLE {name} (LIKE {LEDGER} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
        f"WITH ({LEDGER_STORAGE})"
    )
    if has_default:
        # ATTACH refuses a range the default partition holds rows of: move them first.
        default = ledger_table(DEFAULT_PARTITION)
        in_week = (default.c.processed_at >= start, default.c.processed_at < start + WEEK)
        moved = delete(default).where(*in_week).returning(*default.c).cte("moved")
        columns = [c.name for c in default.c]
        connection.execute(insert(ledger_table(name)).from_select(columns, select(*moved.c)))
    connection.exec_driver_sql(
        f"ALTER TABLE {LEDGER} ATTACH PARTITION {name} FOR VALUES FROM ('{low}') TO ('{high}')"
    )


def ledger_table(name: str) -> TableClause:
    """The ledger's columns in the table (a partition) ``name``."""
    return table(
        name,
        column("integration_id", String()),
        column("event_id", String()),
        column("processed_at", UTCDateTime()),
    )


def _literal(moment: datetime) -> str:
    """A timestamptz literal (made here from a datetime, never from input)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00")
