"""Set-based idempotence in SQL: claim event ids, newer-version-wins upserts.

The database says what was new (``INSERT … ON CONFLICT … RETURNING``), so a batch
costs a handful of statements whatever its size, and concurrent workers cannot
both apply the same event or let an older version overwrite a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, not_, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.db import ProcessedEvent, SyncedRecord, utcnow

__all__ = ["claim_events", "dialect_insert", "insert_missing", "upsert_newer"]

# Columns an update from the source must never change once the row exists.
_INSERT_ONLY = frozenset({"id", "organization_id", "integration_id", "source_id", "created_at"})
_CHUNK = 500


def dialect_insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model)
    if dialect == "sqlite":
        return sqlite.insert(model)
    raise NotImplementedError(f"no upsert for the {dialect} dialect")


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def claim_events(session: Session, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Record (integration_id, event_id) pairs; return the ones not seen before."""
    rows = [{"integration_id": i, "event_id": e, "processed_at": utcnow()} for i, e in keys]
    claimed: set[tuple[str, str]] = set()
    for chunk in _chunks(rows):
        stmt = (
            dialect_insert(session, ProcessedEvent)
            .on_conflict_do_nothing(index_elements=["integration_id", "event_id"])
            .returning(ProcessedEvent.integration_id, ProcessedEvent.event_id)
        )
        claimed.update((i, e) for i, e in session.execute(stmt, list(chunk)))
    return claimed


def upsert_newer(
    session: Session,
    model: type[SyncedRecord],
    rows: Sequence[dict[str, Any]],
    *,
    keep_on_update: Iterable[str] = (),
) -> dict[tuple[str, str], int]:
    """Insert or update rows keyed by (integration_id, source_id), newer version wins.

    A row replaces the stored one only if its ``source_modified_at`` is newer, or
    equal and it is a delete (a tombstone beats an update of the same version).
    Every row must have the same keys, and each key may appear once. A tombstone
    row (``deleted=True``) updates only the bookkeeping, keeping the last data.

    Returns ``{(integration_id, source_id): id}`` for the rows actually written.
    """
    written: dict[tuple[str, str], int] = {}
    if not rows:
        return written
    table: Any = model
    keep = _INSERT_ONLY | set(keep_on_update)
    for chunk in _chunks(rows):
        stmt = dialect_insert(session, model)
        excluded = stmt.excluded
        columns: tuple[str, ...]
        if chunk[0]["deleted"]:
            columns = ("deleted", "source_modified_at", "updated_at")
        else:
            columns = tuple(c for c in chunk[0] if c not in keep)
        newer = or_(
            table.source_modified_at.is_(None),  # a local row adopted by the sync
            excluded.source_modified_at > table.source_modified_at,
            and_(
                excluded.source_modified_at == table.source_modified_at,
                excluded.deleted,
                not_(table.deleted),
            ),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["integration_id", "source_id"],
            set_={c: excluded[c] for c in columns},
            where=newer,
        ).returning(table.integration_id, table.source_id, table.id)
        # executemany: SQLAlchemy batches it into multi-row statements ("insertmanyvalues")
        # and caches the compiled form, which a literal VALUES list would defeat.
        for integration_id, source_id, row_id in session.execute(stmt, list(chunk)):
            written[(integration_id, source_id)] = row_id
    return written


def insert_missing(
    session: Session,
    model: type[Any],
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str] = ("integration_id", "source_id"),
) -> None:
    """Insert the rows whose ``key`` is not stored yet; leave the stored ones alone."""
    for chunk in _chunks(rows):
        stmt = dialect_insert(session, model).on_conflict_do_nothing(index_elements=list(key))
        session.execute(stmt, list(chunk))
