"""What every module writer shares: the batch context, lookups and the generic write.

A writer is called with its module's spec (a ``RowShape``: model, relations, columns)
and never looks modules up: the registry (``worker.sync.modules``) imports the writers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, any_, bindparam, literal, null, select, union_all, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from schemas import QueueMessage
from schemas.envelope import DeletedEvent
from worker.db import SyncedRecord
from worker.sync.columns import Relation, RowContext, RowShape, event_row
from worker.sync.error_summary import Refusal
from worker.sync.rules.reasons import Reason
from worker.sync.statistics import note_inserted
from worker.sync.upsert import is_postgresql, key_filter, upsert_newer

__all__ = [
    "BatchContext",
    "backfill_links",
    "Key",
    "ModuleResult",
    "ids_by_source",
    "is_newer",
    "record_key",
    "refusal",
    "relation_keys",
    "resolve_relations",
    "Stored",
    "write_rows",
]

Key = tuple[str, str]  # (integration_id, portal id)


@dataclass(frozen=True)
class Stored:
    """What a batch knows of a stored record: its id and version (a time log's billing
    state too)."""

    id: int
    version: Any
    deleted: bool
    billing_status: str | None = None


@dataclass
class BatchContext:
    """One batch's session, integration settings and the refusals gathered so far.

    ``project_children`` are the tables of the modules whose records belong to a
    project (withdrawn with it), in registry order. ``open_errors`` holds the
    (integration, module) pairs with open errors in the summary, read once after the
    dependency locks: where there are none, the batch asks nothing of the summary.

    The batch also keeps what it read of stored records (``stored``), per table: the
    keys its events name, of every table, are read in one statement before the first
    module is written (``preload``), and every write here updates what it knows, so a
    writer asks the database again only for keys nobody named up front (healed records,
    customers, new staff).
    That holds because the dependency locks keep other workers from writing these
    records meanwhile, and this batch's own bulk updates ``forget`` what they touch.
    """

    session: Session
    integrations: dict[str, RowContext]
    project_children: tuple[type[SyncedRecord], ...]
    refusals: list[Refusal] = field(default_factory=list)
    open_errors: set[tuple[str, str]] = field(default_factory=set)
    # Writer-private state for the batch (the projects writer's customers).
    scratch: dict[str, Any] = field(default_factory=dict)
    _rows: dict[int, tuple[QueueMessage, dict[str, Any]]] = field(default_factory=dict)
    _stored: dict[Any, dict[Key, Stored | None]] = field(default_factory=dict)
    _existed: dict[Any, set[Key]] = field(default_factory=dict)

    def has_open_errors(self, integration_id: str, module: str) -> bool:
        return (integration_id, module) in self.open_errors

    def row(self, shape: RowShape, message: QueueMessage) -> dict[str, Any]:
        """The row of ``message``, built once per batch (a writer may change it)."""
        kept = self._rows.get(id(message))
        if kept is not None and kept[0] is message:
            return kept[1]
        row = event_row(shape, message.event, self.integrations[message.integration_id])
        # The message is kept with its row, so its id is not reused by another one.
        self._rows[id(message)] = (message, row)
        return row

    def preload(self, wanted: dict[Any, set[Key]]) -> None:
        """Read the stored records of these keys, of every table, in one statement."""
        self._read({m: set(keys) - self._stored.get(m, {}).keys() for m, keys in wanted.items()})

    def stored(self, model: Any, keys: Iterable[Key]) -> dict[Key, Stored]:
        """The stored records among ``keys``; reads only keys not known yet."""
        wanted = set(keys)
        known = self._stored.setdefault(model, {})
        self._read({model: wanted - known.keys()})
        return {k: v for k in wanted if (v := known[k]) is not None}

    def _read(self, missing: dict[Any, set[Key]]) -> None:
        """One ``UNION ALL`` of a lookup per table and integration."""
        missing = {m: keys for m, keys in missing.items() if keys}
        if not missing:
            return
        models = sorted(missing, key=lambda m: str(m.__tablename__))  # one text per set
        parts = []
        for index, model in enumerate(models):
            self._stored.setdefault(model, {})
            for integration_id in sorted({i for i, _ in missing[model]}):
                ids = sorted(s for i, s in missing[model] if i == integration_id)
                parts.append((index, model.__table__, integration_id, ids))
        found = self.session.execute(_lookups(self.session, parts))
        for index, i, s, row_id, version, deleted, billing in found:
            model = models[index]
            if (i, s) in missing[model]:
                self._stored[model][(i, s)] = Stored(row_id, version, deleted, billing)
        for model, keys in missing.items():
            known = self._stored[model]
            for key in keys - known.keys():
                known[key] = None

    def remember(self, model: Any, key: Key, stored: Stored) -> None:
        self._stored.setdefault(model, {})[key] = stored

    def forget(self, model: Any, keys: Iterable[Key] | None = None) -> None:
        """What a bulk update changed behind the batch's back is read again."""
        known = self._stored.get(model)
        if known is None:
            return
        if keys is None:
            known.clear()
        for key in keys or ():
            known.pop(key, None)

    def written(self, model: Any, rows: Sequence[dict[str, Any]], ids: dict[Key, int]) -> None:
        """Rows just upserted: ``ids`` are the ones actually written."""
        known = self._stored.setdefault(model, {})
        existed = self._existed.setdefault(model, set())
        for row in rows:
            key = (row["integration_id"], row["source_id"])
            if key not in ids:
                continue
            before = known.get(key)
            if before is not None:
                existed.add(key)
            billing = before.billing_status if before is not None else row.get("billing_status")
            known[key] = Stored(ids[key], row["source_modified_at"], row["deleted"], billing)

    def inserted(self, model: Any, applied: set[Key]) -> set[Key]:
        """Which of ``applied`` may be new rows (any key not known to have existed)."""
        return applied - self._existed.get(model, set())


# (table's index in the lookup, table, integration id, portal ids)
_Part = tuple[int, Any, str, list[str]]
_FOUND = ("integration_id", "source_id", "id", "source_modified_at", "deleted")


def _lookups(session: Session, parts: list[_Part]) -> Any:
    """A ``SELECT`` per table and integration, by its keys (``key_filter``), in one
    ``UNION ALL``.

    Tried and dropped: a ``LATERAL`` probe of the unique index per key. It is planned
    well only where the statistics know the integration: for one they do not (new
    since the last ``ANALYZE``), PostgreSQL 15 chose another index on
    ``integration_id`` and read all the integration's rows once per key, where
    ``= ANY`` reads them once at worst. Statistics kept fresh per integration
    (``worker.sync.statistics``) keep either on the unique index.
    """
    selects = []
    for index, table, integration_id, ids in parts:
        billing = table.c.get("billing_status")
        selects.append(
            select(
                literal(index).label("t"),
                *(table.c[name] for name in _FOUND),
                (billing if billing is not None else null()).label("billing_status"),
            ).where(key_filter(session, table.c, {(integration_id, s) for s in ids}))
        )
    return selects[0] if len(selects) == 1 else union_all(*selects)


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
    batch: BatchContext, model: type[SyncedRecord], keys: Iterable[Key], *, live_only: bool = False
) -> dict[Key, int]:
    """billsync ids of the records with these (integration, portal id) keys."""
    found = batch.stored(model, keys)
    return {k: v.id for k, v in found.items() if not (live_only and v.deleted)}


def relation_keys(shape: RowShape, row: dict[str, Any]) -> list[tuple[Any, Key]]:
    """(table, key) of the records ``row`` names through the shape's relations."""
    return [
        (relation.target, (row["integration_id"], row[relation.source_column]))
        for relation in shape.relations
        if row.get(relation.source_column)
    ]


def resolve_relations(
    batch: BatchContext, relations: Iterable[Relation], rows: list[dict[str, Any]]
) -> None:
    """Fill each row's foreign keys from the portal ids it names (None if absent)."""
    for relation in relations:
        wanted = {
            (r["integration_id"], r[relation.source_column])
            for r in rows
            if r.get(relation.source_column)
        }
        ids = ids_by_source(batch, relation.target, wanted)
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
    # Core tables, not the mapped classes: an ORM bulk UPDATE costs the worker more
    # Python than the statement costs the server.
    table: Any = child.__table__  # type: ignore[attr-defined]
    target: Any = relation.target.__table__  # type: ignore[attr-defined]
    fk = table.c[relation.fk_column]
    source = table.c[relation.source_column]
    found = (
        select(target.c.id)
        .where(target.c.integration_id == table.c.integration_id, target.c.source_id == source)
        .scalar_subquery()
    )
    by_integration: dict[str, list[str]] = {}
    for integration_id, source_id in arrived:
        by_integration.setdefault(integration_id, []).append(source_id)
    for integration_id, source_ids in by_integration.items():
        named = (
            source == any_(bindparam("arrived", sorted(source_ids), type_=ARRAY(String())))
            if is_postgresql(session)
            else source.in_(source_ids)
        )
        session.execute(
            update(table)
            .where(fk.is_(None), table.c.integration_id == integration_id, named)
            .values({relation.fk_column: found})
        )


def write_rows(
    batch: BatchContext,
    model: type[SyncedRecord],
    rows: Sequence[dict[str, Any]],
    *,
    keep_on_update: Iterable[str] = (),
) -> set[Key]:
    """Upsert live rows and tombstones (newer wins); the keys actually written."""
    keep = tuple(keep_on_update)
    live = [r for r in rows if not r["deleted"]]
    tombstones = [r for r in rows if r["deleted"]]
    written = upsert_newer(batch.session, model, live, keep_on_update=keep)
    written.update(upsert_newer(batch.session, model, tombstones))
    batch.written(model, rows, written)
    new = batch.inserted(model, set(written))
    note_inserted(batch.session, model, Counter(integration_id for integration_id, _ in new))
    return set(written)
