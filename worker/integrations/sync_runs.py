"""Sync runs: requested by the API, CLI or the scheduler, claimed by one runner.

A run is a row (``SyncRun``): the history of every pull and the queue of the ones
to do. At most one run per integration is pending or running at a time; asking
for another returns that one. Runs that change what people see (initial,
instant, resume) put the integration in ``sync_in_progress`` until they end.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeGuard

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.db import Integration, IntegrationState, SyncRun, utcnow
from worker.errors import Conflict
from worker.sync import MODULES

__all__ = [
    "may_pull",
    "OPEN",
    "RunKind",
    "RunOutcome",
    "claim",
    "finish",
    "heartbeat",
    "recover_stale",
    "request_run",
]


class RunKind(StrEnum):
    """Why a sync run was asked for (``SyncRun.kind``)."""

    INITIAL = "initial"
    INSTANT = "instant"
    RESUME = "resume"
    RECONCILIATION = "reconciliation"


class RunOutcome(StrEnum):
    """``SyncRun.outcome``: pending or running while open, then how the run ended."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"


OPEN = (RunOutcome.PENDING, RunOutcome.RUNNING)
# A periodic reconciliation runs quietly: the integration stays "active" meanwhile.
SHOWN_AS_SYNCING = frozenset({RunKind.INITIAL, RunKind.INSTANT, RunKind.RESUME})


class SourceMissing(Conflict):
    """The integration has no pull source (it was connected for webhooks only)."""

    def __init__(self, integration_id: str) -> None:
        super().__init__(
            f"integration {integration_id} has no pull source; give it one to pull from"
        )
        self.integration_id = integration_id


def may_pull(integration: Integration | None) -> TypeGuard[Integration]:
    """Whether the integration still exists, undeleted and not disabled: a pull of it
    may run (or be resumed)."""
    return (
        integration is not None
        and integration.deleted_at is None
        and integration.status != IntegrationState.DISABLED
    )


def request_run(session: Session, integration: Integration, kind: str) -> SyncRun:
    """The integration's open run, or a new pending one of ``kind``.

    Only a resume may run without a pull source: it then just republishes the
    events parked while the integration was disabled.
    """
    if not integration.source and kind != RunKind.RESUME:
        raise SourceMissing(integration.id)
    open_run = _open_run(session, integration.id)
    if open_run is not None:
        return open_run
    run = SyncRun(
        integration_id=integration.id,
        kind=kind,
        outcome=RunOutcome.PENDING,
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
    # A module's standard fields are its payload's (the contract's) fields.
    specs = [s for s in MODULES.values() if s.synced_for(selected)]
    return {
        "standard": {s.module.value: sorted(s.payload.model_fields) for s in specs},
        "custom": integration.field_map or {},
    }


def claim(session: Session, run_id: int | None = None) -> SyncRun | None:
    """Take a pending run (the given one, else the oldest) for this runner."""
    stmt = select(SyncRun).where(SyncRun.outcome == RunOutcome.PENDING).order_by(SyncRun.started_at)
    if run_id is not None:
        stmt = stmt.where(SyncRun.id == run_id)
    # SKIP LOCKED: two workers never claim the same run (ignored on SQLite, one process).
    run = session.scalars(stmt.limit(1).with_for_update(skip_locked=True)).first()
    if run is None:
        return None
    now = utcnow()
    run.outcome = RunOutcome.RUNNING
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


def recover_stale(
    session: Session, stale_after: timedelta, *, now: datetime | None = None
) -> list[SyncRun]:
    """Runs whose runner died become ``interrupted``; a resume run takes over each.

    The resume starts from the watermarks the dead run committed. ``now`` is the
    caller's clock (the scheduler's, which tests move), else the system's.
    """
    now = now or utcnow()
    cutoff = now - stale_after
    stale = session.scalars(
        select(SyncRun)
        .where(SyncRun.outcome == RunOutcome.RUNNING, SyncRun.heartbeat_at < cutoff)
        .with_for_update(skip_locked=True)
    ).all()
    resumed = []
    for run in stale:
        run.outcome = RunOutcome.INTERRUPTED
        run.finished_at = now
        run.error = "the runner stopped sending heartbeats (process killed or lost)"
        integration = session.get(Integration, run.integration_id)
        if not may_pull(integration):
            continue
        session.flush()
        resumed.append(request_run(session, integration, RunKind.RESUME))
    return resumed


def _open_run(session: Session, integration_id: str) -> SyncRun | None:
    return session.scalars(
        select(SyncRun).where(SyncRun.integration_id == integration_id, SyncRun.outcome.in_(OPEN))
    ).first()
