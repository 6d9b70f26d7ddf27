"""Per integration and module: what the worker last applied, for status and metrics.

One upsert per (integration, module) per batch, with "greatest wins" so that
concurrent workers and out-of-order batches never move a time backwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from schemas import QueueMessage
from worker.db import IntegrationActivity, utcnow
from worker.sync.upsert import dialect_insert

__all__ = [
    "EventOutcome",
    "record_activity",
]


class EventOutcome(StrEnum):
    """What became of one event: ``Outcome.status``, and the metrics' outcome label."""

    APPLIED = "applied"
    REFUSED = "refused"
    PARKED = "parked"
    SKIPPED = "skipped"
    STALE = "stale"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"  # never apply_batch's: the consumer gave up on it


@dataclass
class _Tally:
    applied: int = 0
    refused: int = 0
    last_applied_at: datetime | None = None
    newest_applied_version: datetime | None = None
    last_webhook_at: datetime | None = None


def record_activity(
    session: Session, messages: Sequence[QueueMessage], statuses: Sequence[str]
) -> None:
    tallies: dict[tuple[str, str], _Tally] = {}
    now = utcnow()
    for message, status in zip(messages, statuses, strict=True):
        if status in (EventOutcome.PARKED, EventOutcome.SKIPPED):
            continue
        tally = tallies.setdefault((message.integration_id, message.event.module.value), _Tally())
        if status == EventOutcome.APPLIED:
            tally.applied += 1
            tally.last_applied_at = now
            tally.newest_applied_version = _later(
                tally.newest_applied_version, message.event.modified_at
            )
        elif status == EventOutcome.REFUSED:
            tally.refused += 1
        if message.source == "webhook":
            tally.last_webhook_at = _later(tally.last_webhook_at, message.received_at)
    if not tallies:
        return
    rows = [
        {"integration_id": integration_id, "module": module, **vars(tally)}
        for (integration_id, module), tally in sorted(tallies.items())
    ]
    # The Core table: an ORM bulk insert costs more Python than the statement's work.
    table: Any = IntegrationActivity.__table__
    stmt = dialect_insert(session, table)
    new = stmt.excluded
    greatest = func.greatest if session.get_bind().dialect.name == "postgresql" else func.max
    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "module"],
        set_={
            "applied": table.c.applied + new.applied,
            "refused": table.c.refused + new.refused,
            **{
                column: greatest(
                    func.coalesce(table.c[column], new[column]),
                    func.coalesce(new[column], table.c[column]),
                )
                for column in ("last_applied_at", "newest_applied_version", "last_webhook_at")
            },
        },
    )
    session.execute(stmt, rows)


def _later(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current
