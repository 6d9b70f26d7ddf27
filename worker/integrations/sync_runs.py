"""Sync runs: requested by the API, CLI or the scheduler, claimed by one runner.

A run is a row (``SyncRun``): the history of every pull and the queue of the ones
to do. At most one run per integration is pending or running at a time; asking
for another returns that one. Runs that change what people see (initial,
instant, resume) put the integration in ``sync_in_progress`` until they end.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.payloads import (
    BugData,
    MilestoneData,
    ProjectData,
    TaskData,
    TasklistData,
    TimesheetData,
    UserData,
)
from worker.db import Integration, IntegrationState, SyncRun, utcnow

__all__ = [
    "CANCELLED",
    "FAILED",
    "INTERRUPTED",
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "claim",
    "finish",
    "heartbeat",
    "recover_stale",
    "request_run",
]

INITIAL, INSTANT, RESUME, RECONCILIATION = "initial", "instant", "resume", "reconciliation"
PENDING, RUNNING = "pending", "running"
SUCCEEDED, FAILED, INTERRUPTED, CANCELLED = "succeeded", "failed", "interrupted", "cancelled"
OPEN = (PENDING, RUNNING)
# A periodic reconciliation runs quietly: the integration stays "active" meanwhile.
SHOWN_AS_SYNCING = frozenset({INITIAL, INSTANT, RESUME})

STANDARD_FIELDS: dict[str, type[BaseModel]] = {
    "projects": ProjectData,
    "users": UserData,
    "milestones": MilestoneData,
    "tasklists": TasklistData,
    "tasks": TaskData,
    "bugs": BugData,
    "timesheets": TimesheetData,
}


class SourceMissing(Exception):
    """The integration has no pull source (it was connected for webhooks only)."""


def request_run(session: Session, integration: Integration, kind: str) -> SyncRun:
    """The integration's open run, or a new pending one of ``kind``.

    Only a resume may run without a pull source: it then just republishes the
    events parked while the integration was disabled.
    """
    if not integration.source and kind != RESUME:
        raise SourceMissing(
            f"integration {integration.id} has no pull source; set one with "
            "PATCH /api/v1/integrations/<id> {'source': …}"
        )
    open_run = _open_run(session, integration.id)
    if open_run is not None:
        return open_run
    run = SyncRun(
        integration_id=integration.id,
        kind=kind,
        outcome=PENDING,
        started_at=utcnow(),
        counts={},
        mapped_fields=mapped_fields(integration),
    )
    session.add(run)
    if kind in SHOWN_AS_SYNCING and integration.status == IntegrationState.ACTIVE:
        integration.status = IntegrationState.SYNC_IN_PROGRESS
    session.flush()
    return run


def mapped_fields(integration: Integration) -> dict[str, Any]:
    """The fields a run syncs: standard ones per module (time logs only when selected),
    and the custom field map."""
    selected = set(integration.modules or ())
    modules = [m for m in STANDARD_FIELDS if m != "timesheets" or m in selected]
    return {
        "standard": {m: sorted(STANDARD_FIELDS[m].model_fields) for m in modules},
        "custom": integration.field_map or {},
    }


def claim(session: Session, run_id: int | None = None) -> SyncRun | None:
    """Take a pending run (the given one, else the oldest) for this runner."""
    stmt = select(SyncRun).where(SyncRun.outcome == PENDING).order_by(SyncRun.started_at)
    if run_id is not None:
        stmt = stmt.where(SyncRun.id == run_id)
    # SKIP LOCKED: two workers never claim the same run (ignored on SQLite, one process).
    run = session.scalars(stmt.limit(1).with_for_update(skip_locked=True)).first()
    if run is None:
        return None
    now = utcnow()
    run.outcome = RUNNING
    run.started_at = now
    run.heartbeat_at = now
    session.flush()
    return run


def heartbeat(session: Session, run_id: int, counts: dict[str, Any]) -> None:
    run = session.get(SyncRun, run_id)
    if run is not None:
        run.counts = counts
        run.heartbeat_at = utcnow()


def finish(
    session: Session, run_id: int, outcome: str, counts: dict[str, Any], error: str | None = None
) -> None:
    run = session.get(SyncRun, run_id)
    if run is None:
        return
    run.outcome = outcome
    run.counts = counts
    run.error = error
    run.finished_at = utcnow()
    integration = session.get(Integration, run.integration_id)
    if integration is not None and integration.status == IntegrationState.SYNC_IN_PROGRESS:
        # A failed sync leaves webhooks flowing; the history says what failed.
        integration.status = IntegrationState.ACTIVE


def recover_stale(session: Session, stale_after: timedelta) -> list[SyncRun]:
    """Runs whose runner died become ``interrupted``; a resume run takes over each.

    The resume starts from the watermarks the dead run committed.
    """
    cutoff = utcnow() - stale_after
    stale = session.scalars(
        select(SyncRun)
        .where(SyncRun.outcome == RUNNING, SyncRun.heartbeat_at < cutoff)
        .with_for_update(skip_locked=True)
    ).all()
    resumed = []
    for run in stale:
        run.outcome = INTERRUPTED
        run.finished_at = utcnow()
        run.error = "the runner stopped sending heartbeats (process killed or lost)"
        integration = session.get(Integration, run.integration_id)
        if (
            integration is None
            or integration.deleted_at
            or integration.status == IntegrationState.DISABLED
        ):
            continue
        session.flush()
        resumed.append(request_run(session, integration, RESUME))
    return resumed


def _open_run(session: Session, integration_id: str) -> SyncRun | None:
    return session.scalars(
        select(SyncRun).where(SyncRun.integration_id == integration_id, SyncRun.outcome.in_(OPEN))
    ).first()
