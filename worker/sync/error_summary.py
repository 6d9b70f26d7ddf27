"""The error summary: one row per (integration, module, record, reason), never a silent drop.

A repeated refusal bumps ``count`` and ``last_seen`` and keeps the latest payload;
applying or deleting the record later marks its open rows resolved. Resolving is a
compare-and-set on the row's version, never a read followed by an update, so two
workers deciding about the same record at once leave the newest refusal open.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.db import SyncError, UTCDateTime, utcnow
from worker.sync.rules.reasons import Reason
from worker.sync.upsert import is_postgresql

__all__ = [
    "ErrorPage",
    "Refusal",
    "list_errors",
    "page_errors",
    "open_error_modules",
    "open_waiting",
    "record_refusals",
    "resolve_records",
    "resolve_unchanged",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Refusal:
    integration_id: str
    module: str
    source_id: str
    reason: Reason
    payload: dict[str, Any]
    version: datetime | None = None
    depends_on: str | None = None
    details: dict[str, Any] | None = None


def record_refusals(session: Session, refusals: Sequence[Refusal]) -> None:
    """Insert or bump one error-summary row per refusal (re-opening resolved ones)."""
    if not refusals:
        return
    now = utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(SyncError)
    excluded = stmt.excluded
    table: Any = SyncError
    newest = or_(table.version.is_(None), excluded.version >= table.version)

    def latest(column: str) -> Any:
        # The kept payload is the newest refused version, whatever order they came in.
        return case((newest, excluded[column]), else_=getattr(table, column))

    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "module", "source_id", "reason"],
        set_={
            "count": table.count + 1,
            "last_seen": excluded.last_seen,
            "resolved": False,
            "message": excluded.message,
            "last_payload": latest("last_payload"),
            "details": latest("details"),
            "depends_on": latest("depends_on"),
            "version": latest("version"),
        },
    )
    session.execute(
        stmt,
        [
            {
                "integration_id": r.integration_id,
                "module": r.module,
                "source_id": r.source_id,
                "reason": r.reason.code,
                "message": r.reason.message,
                "resolution": r.reason.resolution,
                "count": 1,
                "first_seen": now,
                "last_seen": now,
                "resolved": False,
                "last_payload": r.payload,
                "details": r.details,
                "depends_on": r.depends_on,
                "version": r.version,
            }
            for r in _one_per_key(refusals)
        ],
    )


def _one_per_key(refusals: Sequence[Refusal]) -> list[Refusal]:
    """The newest refusal per error row (one statement may touch a row only once), in
    key order (two batches write rows they share in one order)."""
    newest: dict[tuple[str, str, str, str], Refusal] = {}
    for r in refusals:
        key = (r.integration_id, r.module, r.source_id, r.reason.code)
        if key not in newest or (r.version or _EPOCH) >= (newest[key].version or _EPOCH):
            newest[key] = r
    return [newest[key] for key in sorted(newest)]


def resolve_records(
    session: Session,
    integration_id: str,
    module: str,
    decided: dict[str, datetime | None],
    *,
    inclusive: bool = True,
) -> None:
    """Resolve the open errors about versions up to ``decided[source_id]``.

    Called with the versions just written (``inclusive``: their own errors go too) and
    with the versions just refused (not inclusive: only errors of older versions go; the
    refusal itself is recorded after). An error about a newer version stays open.

    One compare-and-set ``UPDATE``: the version test is in its ``WHERE``, which
    PostgreSQL re-checks on the row's latest version after waiting for a concurrent
    writer, so a newer refusal another worker just recorded is never resolved here.
    """
    if not decided:
        return
    if is_postgresql(session):
        # One statement text whatever the batch: compiling a CASE of one branch per
        # record took a quarter of the worker's time on an integration with open errors.
        rows = [
            {"s": source_id, "v": version.isoformat() if version else None}
            for source_id, version in sorted(decided.items())
        ]
        session.execute(
            _RESOLVE_DECIDED,
            {
                "i": integration_id,
                "m": module,
                "rows": json.dumps(rows),
                "inclusive": inclusive,
                "now": utcnow(),
            },
        )
        return
    table: Any = SyncError
    unbounded = [s for s, v in decided.items() if v is None]
    limits = {s: literal(v, UTCDateTime()) for s, v in decided.items() if v is not None}
    covered = [or_(table.version.is_(None), table.source_id.in_(unbounded))]
    if limits:
        limit = case(limits, value=table.source_id)
        covered.append(table.version <= limit if inclusive else table.version < limit)
    session.execute(
        update(SyncError)
        .where(
            SyncError.integration_id == integration_id,
            SyncError.module == module,
            SyncError.source_id.in_(list(decided)),
            SyncError.resolved.is_(False),
            or_(*covered),
        )
        .values(resolved=True, last_seen=utcnow())
        .execution_options(synchronize_session=False)
    )


# resolve_records on PostgreSQL. An error of no version, or decided without one, is
# covered whatever; else by the decided version, itself included when ``inclusive``.
# The source ids come sorted: rows locked in one order by every batch.
_RESOLVE_DECIDED = text(
    """
    UPDATE sync_errors AS e
    SET resolved = TRUE, last_seen = CAST(:now AS timestamptz)
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS d(s varchar, v timestamptz)
    WHERE e.integration_id = :i
      AND e.module = :m
      AND e.source_id = d.s
      AND NOT e.resolved
      AND (
        e.version IS NULL
        OR d.v IS NULL
        OR e.version < d.v
        OR (CAST(:inclusive AS boolean) AND e.version = d.v)
      )
    """
)


def resolve_unchanged(session: Session, errors: Sequence[SyncError]) -> None:
    """Resolve these open errors unless another transaction recorded a newer version
    of them since they were read (compare-and-set on the version)."""
    for error in errors:
        same_version = (
            SyncError.version.is_(None)
            if error.version is None
            else SyncError.version <= error.version
        )
        session.execute(
            update(SyncError)
            .where(SyncError.id == error.id, SyncError.resolved.is_(False), same_version)
            .values(resolved=True)
            .execution_options(synchronize_session=False)
        )


def open_error_modules(
    session: Session, integration_ids: Iterable[str], modules: Iterable[str]
) -> set[tuple[str, str]]:
    """The (integration, module) pairs with open errors: one probe of the open-errors
    index per pair, so a batch of an integration without errors asks nothing more of
    the summary (and costs the same however many resolved rows it keeps)."""
    ids = sorted(set(integration_ids))
    if not ids:
        return set()
    if is_postgresql(session):
        found = session.execute(_OPEN_MODULES, {"i": ids, "m": sorted(set(modules))})
    else:
        found = session.execute(
            select(SyncError.integration_id, SyncError.module)
            .where(SyncError.integration_id.in_(ids), SyncError.resolved.is_(False))
            .distinct()
        )
    return {(i, m) for i, m in found}


# ``resolved = false``, not ``IS false``: only an equality is an index condition.
_OPEN_MODULES = text(
    """
    SELECT i.id, m.module
    FROM unnest(CAST(:i AS varchar[])) AS i(id), unnest(CAST(:m AS varchar[])) AS m(module)
    WHERE EXISTS (
        SELECT 1 FROM sync_errors e
        WHERE e.integration_id = i.id AND e.resolved = false AND e.module = m.module
    )
    """
)


def open_waiting(
    session: Session, integration_id: str, module: str, arrived: Iterable[str]
) -> list[SyncError]:
    """Open refusals of ``module`` records that waited for one of the ``arrived`` records."""
    ids = list(arrived)
    if not ids:
        return []
    return list(
        session.scalars(
            select(SyncError).where(
                SyncError.integration_id == integration_id,
                SyncError.module == module,
                SyncError.resolved.is_(False),
                SyncError.depends_on.in_(ids),
            )
        )
    )


def list_errors(
    session: Session,
    integration_id: str,
    *,
    module: str | None = None,
    reason: str | None = None,
    resolved: bool | None = False,
) -> list[SyncError]:
    """Every matching error, by module and most recent first (the status page)."""
    stmt = select(SyncError).where(*_matching(integration_id, module, reason, resolved))
    return list(session.scalars(stmt.order_by(SyncError.module, SyncError.last_seen.desc())))


@dataclass(frozen=True)
class ErrorPage:
    """One page of the error summary, and how many errors match per module in all."""

    rows: list[SyncError]
    next_after_id: int | None
    by_module: dict[str, int]


def page_errors(
    session: Session,
    integration_id: str,
    *,
    module: str | None = None,
    reason: str | None = None,
    resolved: bool | None = False,
    limit: int = 50,
    after_id: int = 0,
) -> ErrorPage:
    """Matching errors in id order after ``after_id``, at most ``limit`` (the API's list).

    Id order, not recency: a page boundary must not move while errors are bumped.
    """
    matching = _matching(integration_id, module, reason, resolved)
    rows = list(
        session.scalars(
            select(SyncError)
            .where(*matching, SyncError.id > after_id)
            .order_by(SyncError.id)
            .limit(limit + 1)
        )
    )
    counts = session.execute(
        select(SyncError.module, func.count()).where(*matching).group_by(SyncError.module)
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return ErrorPage(
        rows=rows,
        next_after_id=rows[-1].id if more else None,
        by_module={name: int(n) for name, n in sorted(counts)},
    )


def _matching(
    integration_id: str, module: str | None, reason: str | None, resolved: bool | None
) -> list[ColumnElement[bool]]:
    conditions = [SyncError.integration_id == integration_id]
    if module:
        conditions.append(SyncError.module == module)
    if reason:
        conditions.append(SyncError.reason == reason)
    if resolved is not None:
        conditions.append(SyncError.resolved.is_(resolved))
    return conditions
