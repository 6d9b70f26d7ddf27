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
event ids are claimed, so two batches wait for each other in one order. A project's
primary client is locked with it (exclusive): two batches making or updating the same
customer take turns instead of one failing on the other's new row.

Only records healed later in the batch add keys, out of that order: a late key is never
waited for (a batch waiting for it could hold what its holder waits for, a deadlock;
three workers on conflicting versions of a few records made two in 250 events). It is
tried (``pg_try_advisory_xact_lock``) a few times over a fraction of a second, and
if still held the batch fails with ``LockBusy``, which the consumer treats like a lost
database: the batch is rolled back, kept whole and applied again shortly, no attempt
spent. So a batch waits for another's advisory lock only in its first, sorted take,
and the rows it writes after it are its own records' (under those locks) or shared
ones written in key order (``worker.sync.upsert``): no cycle of waits can form. A
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
import time
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from schemas import Module, QueueMessage
from schemas.envelope import DeletedEvent, ProjectEvent, TimesheetEvent
from worker.errors import DatabaseContention
from worker.sync.upsert import EVENT_LOCK_SPACE, event_lock_key

__all__ = ["CUSTOMERS", "DependencyLocks", "LockBusy", "lock_key"]

CUSTOMERS = "customers"  # the lock namespace of primary clients (no module of their own)
# Pauses between the tries of a late key: about a third of a second in all, what a
# batch commonly takes, before the batch is given up and applied again.
_LATE_PAUSES = (0.01, 0.02, 0.04, 0.08, 0.16)


class LockBusy(DatabaseContention):
    """A lock the batch needs late (a healed record's) stayed held by another
    transaction: the batch is rolled back and applied again, as after a deadlock."""


# The OFFSET 0 keeps the sorted subquery from being flattened, so the locks are taken
# in key order (a consistent order is what keeps two batches from deadlocking): the
# records' keys, then the event ids' two-key locks the ledger's claim needs
# (``worker.sync.upsert.claim_events``), each in key order.
_TAKE = text(
    """
    SELECT CASE WHEN sorted.event
                    THEN pg_advisory_xact_lock(CAST(:space AS integer), CAST(sorted.key AS integer))
                WHEN sorted.exclusive THEN pg_advisory_xact_lock(sorted.key)
                ELSE pg_advisory_xact_lock_shared(sorted.key) END
    FROM (
        SELECT wanted.key, wanted.exclusive, wanted.event
        FROM unnest(
            CAST(:keys AS bigint[]), CAST(:exclusive AS boolean[]), CAST(:event AS boolean[])
        ) AS wanted(key, exclusive, event)
        ORDER BY wanted.event, wanted.key
        OFFSET 0
    ) AS sorted
    """
)


# The same keys tried, never waited for: whether each one is held now.
_TRY = text(
    """
    SELECT sorted.key,
           CASE WHEN sorted.exclusive THEN pg_try_advisory_xact_lock(sorted.key)
                ELSE pg_try_advisory_xact_lock_shared(sorted.key) END
    FROM (
        SELECT wanted.key, wanted.exclusive
        FROM unnest(CAST(:keys AS bigint[]), CAST(:exclusive AS boolean[]))
            AS wanted(key, exclusive)
        ORDER BY wanted.key
        OFFSET 0
    ) AS sorted
    """
)


def lock_key(integration_id: str, kind: str, source_id: str) -> int:
    """A signed 64-bit advisory-lock key for one portal record of ``kind`` (a module, or
    ``CUSTOMERS``; collisions only serialise)."""
    name = f"billsync\x1f{integration_id}\x1f{kind}\x1f{source_id}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)


class DependencyLocks:
    """The dependency locks one transaction holds; ``take`` adds the ones not yet held."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._enabled = session.get_bind().dialect.name == "postgresql"
        self._held: dict[int, bool] = {}  # key → held exclusively

    def take(self, messages: Iterable[QueueMessage], *, claiming: bool = False) -> bool:
        """Take the locks of ``messages`` not held yet; whether there were any.

        The first take waits for its keys, in key order; ``claiming``: with the event-id
        locks of the ledger's claim (``claim_events(..., locked=True)``), in the same
        statement. A later take only tries its keys (see the module docstring) and raises
        ``LockBusy`` if one stays held.
        """
        taking = list(messages)
        wanted: dict[int, bool] = {}
        for message in taking:
            for key, exclusive in _keys(message):
                wanted[key] = wanted.get(key, False) or exclusive
        new = {k: x for k, x in wanted.items() if k not in self._held or (x and not self._held[k])}
        if not new:
            return False
        if self._enabled and not self._held:
            keys = sorted(new)
            events = (
                sorted({event_lock_key(m.integration_id, m.event_id) for m in taking})
                if claiming
                else []
            )
            self._session.execute(
                _TAKE,
                {
                    "keys": keys + events,
                    "exclusive": [new[k] for k in keys] + [True] * len(events),
                    "event": [False] * len(keys) + [True] * len(events),
                    "space": EVENT_LOCK_SPACE,
                },
            ).all()
        elif self._enabled:
            self._try(new)
        self._held.update(new)
        return True

    def _try(self, new: dict[int, bool]) -> None:
        """Take late keys without ever waiting in the server: tried, then tried again
        after a pause while another transaction holds some; ``LockBusy`` at the end."""
        missing = dict(new)
        for pause in (*_LATE_PAUSES, None):
            keys = sorted(missing)
            found = self._session.execute(
                _TRY, {"keys": keys, "exclusive": [missing[k] for k in keys]}
            )
            missing = {key: missing[key] for key, taken in found if not taken}
            if not missing:
                return
            if pause is not None:
                time.sleep(pause)
        raise LockBusy(
            f"{len(missing)} lock(s) of records healed late in the batch are held by "
            "another transaction; the batch is applied again"
        )


def _keys(message: QueueMessage) -> list[tuple[int, bool]]:
    """(key, exclusive) for the record ``message`` writes and the records it needs."""
    integration = message.integration_id
    event = message.event
    keys = [(lock_key(integration, event.module, event.data.id), True)]
    if isinstance(event, DeletedEvent):
        return keys  # a delete needs nothing
    if isinstance(event, ProjectEvent) and event.data.primary_client is not None:
        keys.append((lock_key(integration, CUSTOMERS, event.data.primary_client.id), True))
    needed = [(Module.PROJECTS, getattr(event.data, "project_id", None))]
    if isinstance(event, TimesheetEvent):
        needed += [(Module.TASKS, event.data.task_id), (Module.BUGS, event.data.bug_id)]
    for module, source_id in needed:
        if source_id and module is not event.module:
            keys.append((lock_key(integration, module, source_id), False))
    return keys
