"""Set-based idempotence in SQL: claim event ids, newer-version-wins upserts, key lookups.

The database says what was new (``INSERT … ON CONFLICT … RETURNING``), so a batch
costs a handful of statements whatever its size, and concurrent workers cannot
both apply the same event or let an older version overwrite a newer one.

On PostgreSQL every statement here has one text whatever the number of rows: rows go
in as one JSON document (``INSERT … SELECT … FROM jsonb_to_recordset(…)``, the
set-based cousin of ``unnest`` that costs the client one C-encoded text instead of an
array per column) and keys are looked up with ``= ANY(array)``. psycopg prepares a
statement it sees again and again, so the server plans it once per connection instead
of parsing a multi-row ``VALUES`` list whose text changes with every row count; and
``= ANY`` on the unique ``(integration_id, source_id)`` index stays an index scan
without fresh statistics, where a row-value ``IN`` list may be planned as a scan of
the table. SQLite (the embedded database) keeps the plain executemany forms.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, String, and_, any_, bindparam, not_, or_, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Column, Table
from sqlalchemy.types import JSON

from worker.db import ProcessedEvent, SyncedRecord, utcnow

__all__ = [
    "EVENT_LOCK_SPACE",
    "claim_events",
    "event_lock_key",
    "dialect_insert",
    "insert_missing",
    "is_postgresql",
    "key_filter",
    "upsert_newer",
]

# Columns an update from the source must never change once the row exists.
_INSERT_ONLY = frozenset({"id", "organization_id", "integration_id", "source_id", "created_at"})
_CHUNK = 500
_PG = PGDialect()  # type: ignore[no-untyped-call]  # untyped in SQLAlchemy


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


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


def key_filter(
    session: Session, model: Any, keys: Collection[tuple[str, str]]
) -> ColumnElement[bool]:
    """``(integration_id, source_id)`` among ``keys``.

    On PostgreSQL, per integration ``integration_id = :i AND source_id = ANY(:ids)``:
    one text for any number of keys (of one integration: a batch has one or a few),
    and both columns are conditions of the unique index. Given ``= ANY`` on both
    columns instead, the planner (PostgreSQL 15) was seen to keep ``source_id`` as a
    filter, even to prefer another index on ``integration_id``: a scan of everything
    the integration has.
    """
    if is_postgresql(session):
        by_integration: dict[str, list[str]] = {}
        for integration_id, source_id in sorted(keys):
            by_integration.setdefault(integration_id, []).append(source_id)
        return or_(
            *(
                and_(
                    model.integration_id == bindparam("integration_id", i, unique=True),
                    model.source_id == any_(_array("source_ids", ids)),
                )
                for i, ids in by_integration.items()
            )
        )
    return tuple_(model.integration_id, model.source_id).in_(list(keys))


def _array(name: str, values: list[str]) -> Any:
    return bindparam(name, values, type_=postgresql.ARRAY(String()), unique=True)


# First key of the event ids' two-key advisory locks ("bsev"). PostgreSQL keeps the
# two-key space apart from the one-key (bigint) space of the dependency locks
# (``worker.sync.writers.locks``) and of migrations; partition maintenance has a first
# key of its own (``worker.db.partitions``).
EVENT_LOCK_SPACE = 0x62736576


def event_lock_key(integration_id: str, event_id: str) -> int:
    """The second key (a signed 32-bit int) of an event id's ledger lock; two ids that
    collide only wait for each other."""
    name = f"{integration_id}\x1f{event_id}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=4).digest(), "big", signed=True)


def claim_events(
    session: Session,
    keys: Iterable[tuple[str, str]],
    *,
    locked: bool = False,
    now: datetime | None = None,
) -> set[tuple[str, str]]:
    """Record (integration_id, event_id) pairs; return the ones not seen before.

    On PostgreSQL the ledger is partitioned by claim time, so no unique key spans an id's
    claims in different weeks (``worker.db.partitions``). An id is claimed once all the
    same: an exclusive transaction-scoped advisory lock per id, taken in key order, then
    one insert of the ids found in no partition. A worker claiming an id another one
    claims at the same moment waits for its lock until that transaction ends, and its
    insert, a new statement under READ COMMITTED, then sees the committed row. The locks
    are a statement of their own, before the insert: taken inside it, they would be
    waited for after its snapshot, which would miss that row. ``locked``: the caller
    holds them already (``apply_batch`` takes them with its dependency locks, in the
    same sorted statement). SQLite keeps the id as the primary key (and has one writer).

    ``now`` is when the ids are claimed (tests move it).
    """
    pairs = sorted(set(keys))
    if not pairs:
        return set()
    claimed_at = now or utcnow()
    if is_postgresql(session):
        if not locked:
            keys_in_order = sorted({event_lock_key(i, e) for i, e in pairs})
            lock = {"space": EVENT_LOCK_SPACE, "keys": keys_in_order}
            session.execute(_LOCK_EVENTS, lock).all()
        document = json.dumps([{"i": i, "e": e} for i, e in pairs])
        found = session.execute(_CLAIM, {"rows": document, "now": claimed_at})
        return {(i, e) for i, e in found}
    rows = [{"integration_id": i, "event_id": e, "processed_at": claimed_at} for i, e in pairs]
    claimed: set[tuple[str, str]] = set()
    for chunk in _chunks(rows):
        stmt = (
            dialect_insert(session, ProcessedEvent)
            .on_conflict_do_nothing(index_elements=["integration_id", "event_id"])
            .returning(ProcessedEvent.integration_id, ProcessedEvent.event_id)
        )
        claimed.update((i, e) for i, e in session.execute(stmt, list(chunk)))
    return claimed


# The OFFSET 0 keeps the sorted subquery from being flattened: the locks are taken in
# key order, the order every batch takes them in, so two batches never deadlock on them.
_LOCK_EVENTS = text(
    """
    SELECT pg_advisory_xact_lock(CAST(:space AS integer), sorted.key)
    FROM (
        SELECT wanted.key FROM unnest(CAST(:keys AS integer[])) AS wanted(key)
        ORDER BY wanted.key
        OFFSET 0
    ) AS sorted
    """
)

# Over the whole partitioned table: an id claimed in any week is seen. Each id probes
# each partition's primary key: a LATERAL subquery with LIMIT cannot be flattened into
# a join, so the plan stays a probe per id whatever the statistics say (a plain
# anti-join was planned as a hash of the whole ledger, every batch, growing with it).
_CLAIM = text(
    """
    INSERT INTO processed_events (integration_id, event_id, processed_at)
    SELECT k.i, k.e, CAST(:now AS timestamptz)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS k(i varchar, e varchar)
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM processed_events AS p
        WHERE p.integration_id = k.i AND p.event_id = k.e
        LIMIT 1
    ) AS seen ON TRUE
    WHERE seen.found IS NULL
    RETURNING integration_id, event_id
    """
)


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
    keep = _INSERT_ONLY | set(keep_on_update)

    def updated_by(row: dict[str, Any]) -> tuple[str, ...]:
        if row["deleted"]:
            return ("deleted", "source_modified_at", "updated_at")
        return tuple(c for c in row if c not in keep)

    updated = updated_by(rows[0])
    # In key order, as every batch writes them: two workers writing rows of the same
    # keys lock them in one order (worker.sync.writers.locks).
    rows = sorted(rows, key=lambda row: (row["integration_id"], row["source_id"]))
    if is_postgresql(session):
        table: Table = model.__table__  # type: ignore[attr-defined]
        # One statement per column set: a live row withdrawn as a tombstone keeps its
        # columns, a delete event has only the bookkeeping.
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            shapes.setdefault(tuple(row), []).append(row)
        for shaped in shapes.values():
            columns, values = _with_defaults(table, shaped)
            stmt = _upsert_sql(table, columns, len(shaped[0]), updated_by(shaped[0]))
            found = session.execute(stmt, values)
            written.update({(i, s): row_id for i, s, row_id in found})
        return written
    orm: Any = model
    for chunk in _chunks(rows):
        stmt = dialect_insert(session, model)
        excluded = stmt.excluded
        newer = or_(
            orm.source_modified_at.is_(None),  # a local row adopted by the sync
            excluded.source_modified_at > orm.source_modified_at,
            and_(
                excluded.source_modified_at == orm.source_modified_at,
                excluded.deleted,
                not_(orm.deleted),
            ),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["integration_id", "source_id"],
            set_={c: excluded[c] for c in updated},
            where=newer,
        ).returning(orm.integration_id, orm.source_id, orm.id)
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
    """Insert the rows whose ``key`` is not stored yet; leave the stored ones alone.

    In ``key`` order: an insert waits for another transaction's uncommitted row of the
    same key, so two batches inserting the same new rows (staff users first seen on
    their time logs) must meet them in one order, or each waits for the other.
    """
    if not rows:
        return
    rows = sorted(rows, key=lambda row: tuple(row[column] for column in key))
    if is_postgresql(session):
        table: Table = model.__table__
        columns, values = _with_defaults(table, rows)
        session.execute(_insert_missing_sql(table, columns, len(rows[0]), tuple(key)), values)
        return
    for chunk in _chunks(rows):
        stmt = dialect_insert(session, model).on_conflict_do_nothing(index_elements=list(key))
        session.execute(stmt, list(chunk))


# -- PostgreSQL: one statement text per table and column set ------------------------------


def _with_defaults(
    table: Table, rows: Sequence[dict[str, Any]]
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The columns to insert and the statement's parameters: the rows as one JSON
    document (``rows``), read back by ``jsonb_to_recordset`` into typed columns, and
    one value per column the rows leave out (``d0``, ``d1``…).

    One JSON text, encoded in C, costs the client a fraction of one array per column
    (psycopg dumps arrays element by element in Python). As SQLAlchemy's own INSERT
    does, a column the rows leave out gets its Python-side default (``created_at``, a
    tombstone's ``minutes``…): the server has none of them.
    """
    given = tuple(rows[0])
    defaults = [c for c in table.columns if c.name not in given and _has_default(c)]
    params: dict[str, Any] = {"rows": json.dumps(rows, default=_json_scalar)}
    for index, column in enumerate(defaults):
        params[f"d{index}"] = _default(column)
    return given + tuple(c.name for c in defaults), params


def _json_scalar(value: Any) -> Any:
    """What json.dumps cannot write itself, as the text the column type reads."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not a column value")


def _has_default(column: Column[Any]) -> bool:
    default = column.default
    return default is not None and (default.is_scalar or default.is_callable)


def _default(column: Column[Any]) -> Any:
    default: Any = column.default
    value = default.arg(None) if default.is_callable else default.arg
    # A JSON column's default goes in as text, like its values.
    return json.dumps(value) if isinstance(column.type, JSON) else value


def _select_rows(table: Table, columns: tuple[str, ...], given: int) -> str:
    """``SELECT`` of ``columns`` from the ``rows`` document (the first ``given``) and the
    default parameters (the rest)."""
    preparer = _PG.identifier_preparer
    types = {c: table.columns[c].type.compile(dialect=_PG) for c in columns}
    read = ", ".join(f"{preparer.quote(c)} {types[c]}" for c in columns[:given])
    values = [f"r.{preparer.quote(c)}" for c in columns[:given]]
    values += [f"CAST(:d{index} AS {types[c]})" for index, c in enumerate(columns[given:])]
    return f"SELECT {', '.join(values)} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({read})"


def _quoted(columns: Iterable[str]) -> str:
    preparer = _PG.identifier_preparer
    return ", ".join(preparer.quote(c) for c in columns)


@cache
def _upsert_sql(
    table: Table, columns: tuple[str, ...], given: int, updated: tuple[str, ...]
) -> Any:
    preparer = _PG.identifier_preparer
    sets = ", ".join(f"{preparer.quote(c)} = excluded.{preparer.quote(c)}" for c in updated)
    return text(
        f"""
        INSERT INTO {preparer.quote(table.name)} AS t ({_quoted(columns)})
        {_select_rows(table, columns, given)}
        ON CONFLICT (integration_id, source_id) DO UPDATE SET {sets}
        WHERE t.source_modified_at IS NULL
           OR excluded.source_modified_at > t.source_modified_at
           OR (excluded.source_modified_at = t.source_modified_at
               AND excluded.deleted AND NOT t.deleted)
        RETURNING t.integration_id, t.source_id, t.id
        """
    )


@cache
def _insert_missing_sql(
    table: Table, columns: tuple[str, ...], given: int, key: tuple[str, ...]
) -> Any:
    preparer = _PG.identifier_preparer
    return text(
        f"""
        INSERT INTO {preparer.quote(table.name)} ({_quoted(columns)})
        {_select_rows(table, columns, given)}
        ON CONFLICT ({_quoted(key)}) DO NOTHING
        """
    )
