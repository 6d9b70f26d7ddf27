"""What every module writer shares: the batch context, lookups and the generic write.

A writer is called with its module's spec (a ``RowShape``: model, relations, columns)
and never looks modules up: the registry (``worker.sync.modules``) imports the writers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from schemas import QueueMessage
from schemas.envelope import DeletedEvent
from worker.db import SyncedRecord
from worker.sync.columns import Relation, RowContext
from worker.sync.error_summary import Refusal
from worker.sync.rules.reasons import Reason
from worker.sync.upsert import upsert_newer

__all__ = [
    "BatchContext",
    "backfill_links",
    "Key",
    "ModuleResult",
    "ids_by_source",
    "is_newer",
    "record_key",
    "refusal",
    "resolve_relations",
    "write_rows",
]

Key = tuple[str, str]  # (integration_id, portal id)


@dataclass
class BatchContext:
    """One batch's session, integration settings and the refusals gathered so far.

    ``project_children`` are the tables of the modules whose records belong to a
    project (withdrawn with it), in registry order.
    """

    session: Session
    integrations: dict[str, RowContext]
    project_children: tuple[type[SyncedRecord], ...]
    refusals: list[Refusal] = field(default_factory=list)


@dataclass
class ModuleResult:
    """Which records a module writer applied, and which it refused."""

    applied: set[Key] = field(default_factory=set)
    refused: set[Key] = field(default_factory=set)


def record_key(message: QueueMessage) -> Key:
    return (message.integration_id, message.event.data.id)


def is_newer(message: QueueMessage, stored_version: Any, stored_deleted: bool) -> bool:
    """The same newer-wins test the upsert applies, for decisions made before writing."""
    if stored_version is None:
        return True
    version = message.event.modified_at
    deleting = isinstance(message.event, DeletedEvent)
    return bool(
        version > stored_version or (version == stored_version and deleting and not stored_deleted)
    )


def refusal(
    message: QueueMessage,
    reason: Reason,
    *,
    depends_on: str | None = None,
    details: dict[str, Any] | None = None,
) -> Refusal:
    return Refusal(
        integration_id=message.integration_id,
        module=message.event.module.value,
        source_id=message.event.data.id,
        reason=reason,
        payload=message.event.model_dump(mode="json"),
        version=message.event.modified_at,
        depends_on=depends_on,
        details=details,
    )


def ids_by_source(
    session: Session, model: type[SyncedRecord], keys: Iterable[Key], *, live_only: bool = False
) -> dict[Key, int]:
    """billsync ids of the records with these (integration, portal id) keys."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    table: Any = model
    stmt = select(table.integration_id, table.source_id, table.id).where(
        tuple_(table.integration_id, table.source_id).in_(wanted)
    )
    if live_only:
        stmt = stmt.where(table.deleted.is_(False))
    return {(i, s): row_id for i, s, row_id in session.execute(stmt)}


def resolve_relations(
    session: Session, relations: Iterable[Relation], rows: list[dict[str, Any]]
) -> None:
    """Fill each row's foreign keys from the portal ids it names (None if absent)."""
    for relation in relations:
        wanted = {
            (r["integration_id"], r[relation.source_column])
            for r in rows
            if r.get(relation.source_column)
        }
        ids = ids_by_source(session, relation.target, wanted)
        for row in rows:
            if relation.source_column in row:
                row[relation.fk_column] = ids.get(
                    (row["integration_id"], row[relation.source_column])
                )


def backfill_links(
    session: Session, relation: Relation, child: type[SyncedRecord], arrived: set[Key]
) -> None:
    """Point rows of ``child`` that name an arrived ``relation.target`` record at it.

    A log may be written before its task (for example when its project was already
    deleted); the link is filled in when the task arrives.
    """
    table: Any = child
    target: Any = relation.target
    fk = getattr(table, relation.fk_column)
    source = getattr(table, relation.source_column)
    found = (
        select(target.id)
        .where(target.integration_id == table.integration_id, target.source_id == source)
        .scalar_subquery()
    )
    by_integration: dict[str, list[str]] = {}
    for integration_id, source_id in arrived:
        by_integration.setdefault(integration_id, []).append(source_id)
    for integration_id, source_ids in by_integration.items():
        session.execute(
            update(table)
            .where(fk.is_(None), table.integration_id == integration_id, source.in_(source_ids))
            .values({relation.fk_column: found})
        )


def write_rows(
    session: Session,
    model: type[SyncedRecord],
    rows: Sequence[dict[str, Any]],
    *,
    keep_on_update: Iterable[str] = (),
) -> set[Key]:
    """Upsert live rows and tombstones (newer wins); the keys actually written."""
    keep = tuple(keep_on_update)
    written = upsert_newer(
        session, model, [r for r in rows if not r["deleted"]], keep_on_update=keep
    )
    written.update(upsert_newer(session, model, [r for r in rows if r["deleted"]]))
    return set(written)
