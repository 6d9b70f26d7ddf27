"""The error summary: one row per (integration, module, record, reason), never a silent drop.

A repeated refusal bumps ``count`` and ``last_seen`` and keeps the latest payload;
applying or deleting the record later marks its open rows resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from worker.db import SyncError
from worker.db.base import utcnow
from worker.rules.reasons import Reason

__all__ = ["Refusal", "list_errors", "open_waiting", "record_refusals", "resolve_records"]


@dataclass(frozen=True)
class Refusal:
    integration_id: str
    module: str
    source_id: str
    reason: Reason
    payload: dict[str, Any]
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
    stmt = stmt.on_conflict_do_update(
        index_elements=["integration_id", "module", "source_id", "reason"],
        set_={
            "count": table.count + 1,
            "last_seen": excluded.last_seen,
            "resolved": False,
            "message": excluded.message,
            "last_payload": excluded.last_payload,
            "details": excluded.details,
            "depends_on": excluded.depends_on,
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
            }
            for r in _one_per_key(refusals)
        ],
    )


def _one_per_key(refusals: Sequence[Refusal]) -> list[Refusal]:
    latest: dict[tuple[str, str, str, str], Refusal] = {}
    for r in refusals:
        latest[(r.integration_id, r.module, r.source_id, r.reason.code)] = r
    return list(latest.values())


def resolve_records(
    session: Session,
    integration_id: str,
    module: str,
    source_ids: Iterable[str],
    *,
    keep: Iterable[str] = (),
) -> None:
    """Mark the open errors of these records resolved (except reasons in ``keep``)."""
    ids = list(source_ids)
    if not ids:
        return
    stmt = update(SyncError).where(
        SyncError.integration_id == integration_id,
        SyncError.module == module,
        SyncError.source_id.in_(ids),
        SyncError.resolved.is_(False),
    )
    kept = list(keep)
    if kept:
        stmt = stmt.where(SyncError.reason.not_in(kept))
    session.execute(stmt.values(resolved=True, last_seen=utcnow()))


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
    stmt = select(SyncError).where(SyncError.integration_id == integration_id)
    if module:
        stmt = stmt.where(SyncError.module == module)
    if reason:
        stmt = stmt.where(SyncError.reason == reason)
    if resolved is not None:
        stmt = stmt.where(SyncError.resolved.is_(resolved))
    return list(session.scalars(stmt.order_by(SyncError.module, SyncError.last_seen.desc())))
