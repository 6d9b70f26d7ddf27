"""processed-event ledger partitioned by week; autovacuum of the hot tables

PostgreSQL only (SQLite keeps the plain ledger and has no autovacuum):

- ``processed_events`` becomes range-partitioned by ``processed_at``, a partition per
  week (Monday 00:00 UTC), so that ``billsync db prune`` drops whole old weeks instead
  of deleting rows (see ``worker.db.partitions`` for why weeks, and for the names,
  which it reads the ranges from). A unique key of a partitioned table must hold the
  partition key, so the primary key becomes (integration_id, event_id, processed_at):
  it no longer makes an event id unique, and claiming takes an advisory lock per event
  id instead (``worker.sync.upsert.claim_events``).
- Existing rows are copied: the weeks of the last ``WEEKS_KEPT`` get their own
  partitions, anything older one ``processed_events_before_<day>`` partition that the
  first prune drops whole once it is all past retention. ``WEEKS_AHEAD`` weeks are made
  ahead, and a DEFAULT partition catches a claim no partition covers.
- Storage parameters for the tables the worker writes most (``HOT_TABLES``, below).

Downgrade puts the rows back into a plain table keyed by (integration_id, event_id),
the newest claim of each id, and resets the storage parameters.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-15 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER = "processed_events"
WEEK = timedelta(days=7)
WEEKS_KEPT = 8
WEEKS_AHEAD = 4

# Every ledger partition (worker.db.partitions.LEDGER_STORAGE says the same): the ledger
# is insert-only, and at the default scale factors a partition is vacuumed only after
# it grew by a fifth; until then its visibility map is stale and the claim's lookup in
# its primary key cannot be index-only. Analyzing sooner keeps the planner from taking
# the week being filled for empty.
LEDGER_STORAGE = (
    "autovacuum_vacuum_insert_scale_factor = 0.02, "
    "autovacuum_vacuum_scale_factor = 0.02, "
    "autovacuum_analyze_scale_factor = 0.02"
)

# The other tables the worker writes most, and why their defaults do not fit:
HOT_TABLES = {
    # Time logs: the largest table (millions of rows), re-versioned by every update.
    # At the default 20 % a million-row table collects 200,000 dead versions before a
    # vacuum, and its statistics go stale as fast; 2 % keeps both in step.
    "timesheets": {
        "autovacuum_vacuum_scale_factor": "0.02",
        "autovacuum_analyze_scale_factor": "0.02",
    },
    # Count deltas: every batch appends rows and folding deletes them again, so the live
    # rows stay few while dead ones pile up at the rate of the writes. Vacuum after a
    # fixed number of dead (or inserted) rows whatever the size, so the status's sums
    # do not wade through dead index entries.
    "integration_counts": {
        "autovacuum_vacuum_scale_factor": "0",
        "autovacuum_vacuum_threshold": "1000",
        "autovacuum_vacuum_insert_scale_factor": "0",
        "autovacuum_vacuum_insert_threshold": "1000",
    },
    # One row per integration and module, updated by every batch: room on each page
    # (fillfactor) keeps the updates HOT (no index entry), and a fixed threshold has
    # the few pages vacuumed often.
    "integration_activity": {
        "fillfactor": "70",
        "autovacuum_vacuum_scale_factor": "0",
        "autovacuum_vacuum_threshold": "200",
    },
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _partition_ledger(datetime.now(UTC))
    for table, parameters in HOT_TABLES.items():
        settings = ", ".join(f"{name} = {value}" for name, value in parameters.items())
        _run(f"ALTER TABLE {table} SET ({settings})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, parameters in HOT_TABLES.items():
        _run(f"ALTER TABLE {table} RESET ({', '.join(parameters)})")
    _run(
        f"CREATE TABLE {LEDGER}_plain (integration_id VARCHAR(36) NOT NULL, "
        "event_id VARCHAR(200) NOT NULL, processed_at TIMESTAMP WITH TIME ZONE NOT NULL)"
    )
    # An id renewed by a prune has a row per claim: keep its newest.
    _run(
        f"INSERT INTO {LEDGER}_plain (integration_id, event_id, processed_at) "
        f"SELECT integration_id, event_id, max(processed_at) FROM {LEDGER} "
        "GROUP BY integration_id, event_id"
    )
    _run(f"DROP TABLE {LEDGER}")  # with its partitions
    _run(f"ALTER TABLE {LEDGER}_plain RENAME TO {LEDGER}")
    _run(f"ALTER TABLE {LEDGER} ADD CONSTRAINT pk_{LEDGER} PRIMARY KEY (integration_id, event_id)")


def _partition_ledger(now: datetime) -> None:
    old = f"{LEDGER}_unpartitioned"
    _run(f"ALTER TABLE {LEDGER} RENAME TO {old}")
    _run(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{LEDGER} TO pk_{old}")
    _run(
        f"CREATE TABLE {LEDGER} (integration_id VARCHAR(36) NOT NULL, "
        "event_id VARCHAR(200) NOT NULL, processed_at TIMESTAMP WITH TIME ZONE NOT NULL, "
        f"CONSTRAINT pk_{LEDGER} PRIMARY KEY (integration_id, event_id, processed_at)) "
        "PARTITION BY RANGE (processed_at)"
    )
    oldest = op.get_bind().exec_driver_sql(f"SELECT min(processed_at) FROM {old}").scalar()
    current = _week_start(now)
    first = current if oldest is None else max(_week_start(oldest), current - WEEK * WEEKS_KEPT)
    if oldest is not None and oldest < first:
        _run(
            f"CREATE TABLE {LEDGER}_before_{first:%Y%m%d} PARTITION OF {LEDGER} "
            f"FOR VALUES FROM (MINVALUE) TO ('{_literal(first)}') WITH ({LEDGER_STORAGE})"
        )
    start = first
    while start <= current + WEEK * WEEKS_AHEAD:
        _run(
            f"CREATE TABLE {LEDGER}_p{start:%Y%m%d} PARTITION OF {LEDGER} "
            f"FOR VALUES FROM ('{_literal(start)}') TO ('{_literal(start + WEEK)}') "
            f"WITH ({LEDGER_STORAGE})"
        )
        start += WEEK
    _run(f"CREATE TABLE {LEDGER}_default PARTITION OF {LEDGER} DEFAULT WITH ({LEDGER_STORAGE})")
    _run(
        f"INSERT INTO {LEDGER} (integration_id, event_id, processed_at) "
        f"SELECT integration_id, event_id, processed_at FROM {old}"
    )
    _run(f"DROP TABLE {old}")


def _week_start(moment: datetime) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _literal(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def _run(statement: str) -> None:
    # As written: the DDL binds nothing, and its literals are made here.
    op.get_bind().exec_driver_sql(statement)
