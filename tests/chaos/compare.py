"""The database against the ledger's oracle: what was lost, stale, duplicated or left open."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.chaos.ledger import Expected
from worker.db import DeadLetter, ProcessedEvent, Project, SyncError, Task, Timesheet

__all__ = ["Report", "compare"]

TABLES: dict[str, Any] = {"projects": Project, "tasks": Task, "timesheets": Timesheet}


@dataclass
class Report:
    """One run's figures; a correct run has zeros from ``lost`` on."""

    sent: int = 0  # deliveries attempted (each event twice)
    accepted: int = 0  # deliveries answered 2xx
    gave_up: int = 0  # deliveries never answered 2xx before the deadline
    lost: int = 0  # records the oracle has that the database lacks
    stale: int = 0  # records with an older version, another value, or alive/deleted wrongly
    duplicated: int = 0  # records stored more than once
    false_open_errors: int = 0  # open error-summary rows (every ledger event is valid)
    dead_lettered: int = 0  # events in the dead letters (archived or still queued)

    @property
    def correct(self) -> bool:
        faults = (self.lost, self.stale, self.duplicated, self.false_open_errors)
        return self.gave_up == 0 and not any(faults) and self.dead_lettered == 0

    def lines(self) -> list[str]:
        return [f"{name:<18} {value:>9,}" for name, value in asdict(self).items()]


def compare(
    sessions: sessionmaker[Session],
    integration_id: str,
    expected: dict[tuple[str, str], Expected],
    *,
    dead_letter_queue_depth: int = 0,
) -> Report:
    report = Report(dead_lettered=dead_letter_queue_depth)
    with sessions() as session:
        for module, table in TABLES.items():
            stored = _stored(session, table, module, integration_id)
            for (kind, source_id), want in expected.items():
                if kind != module:
                    continue
                rows = stored.get(source_id, [])
                report.duplicated += max(len(rows) - 1, 0)
                _judge(report, want, rows[0] if rows else None)
        report.false_open_errors = _count(
            session,
            select(func.count()).where(
                SyncError.integration_id == integration_id, SyncError.resolved.is_(False)
            ),
        )
        report.dead_lettered += _count(session, select(func.count()).select_from(DeadLetter))
    return report


def processed(sessions: sessionmaker[Session], integration_id: str, prefix: str) -> int:
    """How many events whose id starts with ``prefix`` are in the processed-event ledger."""
    with sessions() as session:
        query = select(func.count()).where(
            ProcessedEvent.integration_id == integration_id,
            ProcessedEvent.event_id.startswith(prefix, autoescape=True),
        )
        return _count(session, query)


def _stored(
    session: Session, table: Any, module: str, integration_id: str
) -> dict[str, list[tuple[Any, ...]]]:
    label = table.minutes if module == "timesheets" else table.name
    rows = session.execute(
        select(table.source_id, table.source_modified_at, label, table.deleted).where(
            table.integration_id == integration_id
        )
    )
    found: dict[str, list[tuple[Any, ...]]] = {}
    for source_id, modified_at, value, deleted in rows:
        found.setdefault(source_id, []).append((modified_at, value, deleted))
    return found


def _judge(report: Report, want: Expected, row: tuple[Any, ...] | None) -> None:
    if row is None:
        if not want.deleted:
            report.lost += 1
        return
    modified_at, value, deleted = row
    if want.deleted:
        if not deleted:
            report.stale += 1  # a delete that did not win
        return
    if deleted or modified_at != want.modified_at or value != want.label:
        report.stale += 1


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(query) or 0)
