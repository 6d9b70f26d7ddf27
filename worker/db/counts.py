"""Counts the database keeps per integration, so that status never counts rows.

Status shows, per integration, how many records of each module are live (not
deleted), how many sync errors of each module are open, how many events are parked
and how many dead letters are kept. Counting those rows took most of a status call
on a big integration (a million time logs: a scan of them per call). Instead, the
counted tables have triggers (migration 0012) that append a delta to
``integration_counts`` for every change of a count, and a count is the sum of its
deltas: exact under any insert, update (a record tombstoned or brought back, an
error resolved or reopened, a dead letter's integration repaired) and delete,
whichever code makes it, in the transaction that makes it.

- PostgreSQL: statement-level triggers with transition tables, so a batch of 500
  rows costs one ``INSERT … SELECT … GROUP BY`` (one delta row per integration and
  counter it changed), and an update that changes no count appends nothing.
  Appending, never updating a shared row, keeps concurrent workers from queueing on
  a counter; about one trigger call in 16 also folds the deltas of the integrations
  it touched into one row per counter (``billsync_fold_counts``), skipping the rows
  another transaction is folding, so nobody waits and the rows summed stay few.
  ``TRUNCATE`` of a counted table drops its counts.
- SQLite (the embedded database, one writer at a time): row-level triggers keep one
  row per (integration, counter) and add to it.

What bypasses triggers (a disabled trigger, ``session_replication_role = replica``)
bypasses the counts too: billsync does neither.

A new module's table needs its triggers in the migration that creates it: on
PostgreSQL the three ``billsync_count_live_rows()`` triggers (and the ``TRUNCATE``
one) that every synced table has; on SQLite the four triggers of 0012's
``_sqlite_triggers``. ``tests/integration/test_counts.py`` checks that every
registered module's table has them.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from worker.db.sync_models import IntegrationCount

__all__ = ["Counter", "integration_counts"]


class Counter:
    """The names of the counts (``integration_counts.counter``), as the triggers write them."""

    PARKED_EVENTS = "parked_events"
    DEAD_LETTERS = "dead_letters"

    @staticmethod
    def live_rows(table: str) -> str:
        """A synced table's live (not deleted) rows."""
        return f"rows:{table}"

    @staticmethod
    def open_errors(module: str) -> str:
        """A module's open (unresolved) sync errors."""
        return f"open_errors:{module}"


def integration_counts(session: Session, integration_id: str) -> dict[str, int]:
    """Every count of ``integration_id`` by counter; a counter never changed is absent
    (its count is 0)."""
    rows = session.execute(
        select(IntegrationCount.counter, func.sum(IntegrationCount.delta))
        .where(IntegrationCount.integration_id == integration_id)
        .group_by(IntegrationCount.counter)
    )
    return {counter: int(total or 0) for counter, total in rows}
