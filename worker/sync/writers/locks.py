"""Dependency locks: "is what I need there?" and "who waits for me?" never miss each other.

A record refused only because a record it needs is missing (a task's project, a time
log's task) is healed when that record is written: its writer looks in the error
summary for refusals waiting for it. With several workers, under READ COMMITTED, two
transactions can each fail to see the other's uncommitted row: worker A writes the
project while worker B looks for it, finds nothing and records the task's refusal;
A looks for waiting refusals before B committed and finds none. Both commit, and the
task waits for ever for a project that is there.

So every batch on PostgreSQL takes, before its first lookup, a transaction-scoped
advisory lock per (integration, module, portal id): **exclusive** on each record it
may write, **shared** on each record it needs (a project, task or bug). Whoever comes
second waits for the first to commit, and then sees it: a dependent that comes second
finds the dependency and is applied; a writer that comes second finds the committed
refusal and heals it. So a refusal needs no re-check after it is recorded: while it
is being made, its dependency cannot be being written. The exclusive lock also keeps
two workers from deciding about one record at once, so an older version refused by
one never stays open beside a newer version written by the other. Dependents of one
record do not block each other (shared), and the locks end with the transaction, so
a crash leaves nothing behind. The keys are taken in one sorted statement before the
event ids are claimed, so two batches wait for each other in one order; only records
healed later in the batch add keys, and a deadlock that this rare late taking may
cause is detected by PostgreSQL and retried by the consumer like any lock timeout. A
batch holds a few hundred locks at most (PostgreSQL's lock table holds
``max_locks_per_transaction`` × connections).

Why not the alternatives: the missing record has no row yet to ``SELECT … FOR
UPDATE``; a "heal sweep" after commit is lost if the worker dies between the commit
and the sweep, and a periodic sweep over every open refusal costs a join per batch.

SQLite (embedded mode) needs no locks: a batch holds the database's single write lock
from its first statement that writes (claiming the event ids), before any lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from schemas import Module, QueueMessage
from schemas.envelope import DeletedEvent, TimesheetEvent

__all__ = ["DependencyLocks", "lock_key"]

# The OFFSET 0 keeps the sorted subquery from being flattened, so the locks are taken
# in key order (a consistent order is what keeps two batches from deadlocking).
_TAKE = text(
    """
    SELECT CASE WHEN sorted.exclusive THEN pg_advisory_xact_lock(sorted.key)
                ELSE pg_advisory_xact_lock_shared(sorted.key) END
    FROM (
        SELECT wanted.key, wanted.exclusive
        FROM unnest(CAST(:keys AS bigint[]), CAST(:exclusive AS boolean[]))
            AS wanted(key, exclusive)
        ORDER BY wanted.key
        OFFSET 0
    ) AS sorted
    """
)


def lock_key(integration_id: str, module: Module, source_id: str) -> int:
    """A signed 64-bit advisory-lock key for one portal record (collisions only serialise)."""
    name = f"billsync\x1f{integration_id}\x1f{module.value}\x1f{source_id}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)


class DependencyLocks:
    """The dependency locks one transaction holds; ``take`` adds the ones not yet held."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._enabled = session.get_bind().dialect.name == "postgresql"
        self._held: dict[int, bool] = {}  # key → held exclusively

    def take(self, messages: Iterable[QueueMessage]) -> bool:
        """Take the locks of ``messages`` not held yet; whether there were any."""
        wanted: dict[int, bool] = {}
        for message in messages:
            for key, exclusive in _keys(message):
                wanted[key] = wanted.get(key, False) or exclusive
        new = {k: x for k, x in wanted.items() if k not in self._held or (x and not self._held[k])}
        if not new:
            return False
        if self._enabled:
            keys = sorted(new)
            self._session.execute(_TAKE, {"keys": keys, "exclusive": [new[k] for k in keys]}).all()
        self._held.update(new)
        return True


def _keys(message: QueueMessage) -> list[tuple[int, bool]]:
    """(key, exclusive) for the record ``message`` writes and the records it needs."""
    integration = message.integration_id
    event = message.event
    keys = [(lock_key(integration, event.module, event.data.id), True)]
    if isinstance(event, DeletedEvent):
        return keys  # a delete needs nothing
    needed = [(Module.PROJECTS, getattr(event.data, "project_id", None))]
    if isinstance(event, TimesheetEvent):
        needed += [(Module.TASKS, event.data.task_id), (Module.BUGS, event.data.bug_id)]
    for module, source_id in needed:
        if source_id and module is not event.module:
            keys.append((lock_key(integration, module, source_id), False))
    return keys
