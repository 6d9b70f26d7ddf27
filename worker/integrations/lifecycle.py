"""The integration lifecycle: connect, sync, edit, disable, enable, delete.

While disabled, webhooks are still answered 202 and their events are kept
unapplied (parked, see ``worker.sync.apply``); enabling republishes them and resumes
every module from its watermark. Deleting keeps the synced projects as
standalone projects and frees the organization to connect another portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from schemas.api import IntegrationCreate, IntegrationUpdate
from schemas.responses import IntegrationStatusView, ModuleStatus, RunView
from worker.db import (
    Counter,
    Integration,
    IntegrationActivity,
    IntegrationState,
    Project,
    SyncCursor,
    SyncRun,
    integration_counts,
    utcnow,
)
from worker.errors import Conflict, IntegrationGone
from worker.integrations.credential_box import sealed_source
from worker.integrations.store import CreatedIntegration, create_integration
from worker.integrations.sync_runs import OPEN, RunKind, RunOutcome, request_run
from worker.settings import Settings
from worker.sync import MODULES

__all__ = [
    "IntegrationStatus",
    "connect",
    "delete_integration",
    "disable",
    "enable",
    "history",
    "request_sync",
    "status",
    "update_settings",
]


def connect(
    session: Session,
    organization_id: str,
    request: IntegrationCreate,
    *,
    settings: Settings | None = None,
) -> CreatedIntegration:
    """Create the integration; with a pull source, request its initial sync.

    ``settings`` holds the key that encrypts the source's credentials.
    """
    created = create_integration(session, organization_id, request, settings=settings)
    if created.integration.source:
        request_run(session, created.integration, RunKind.INITIAL)
    return created


def request_sync(session: Session, integration: Integration) -> SyncRun:
    """Instant sync: a pull now (or the one already pending or running)."""
    _require_live(integration)
    if integration.status == IntegrationState.DISABLED:
        raise Conflict("the integration is disabled; enable it to sync")
    return request_run(session, integration, RunKind.INSTANT)


def update_settings(
    session: Session,
    integration: Integration,
    change: IntegrationUpdate,
    *,
    settings: Settings | None = None,
) -> None:
    """Edit what may change after connecting (the portal itself may not).

    A new source replaces the old one whole; its credentials are encrypted with
    the key in ``settings``.
    """
    _require_live(integration)
    values = change.model_dump(mode="json", exclude_unset=True)
    for name in ("customer_duplication", "restrict_project_creation", "field_map"):
        if name in values:
            setattr(integration, name, values[name])
    if "source" in values:
        integration.source = sealed_source(change.source, settings) if change.source else None
    if "modules" in values:
        integration.modules = change.module_set()
    session.flush()


def disable(session: Session, integration: Integration) -> None:
    """Pause: later events are kept but not applied; a running pull stops."""
    _require_live(integration)
    integration.status = IntegrationState.DISABLED
    session.flush()


def enable(session: Session, integration: Integration, portal_id: str | None) -> SyncRun | None:
    """Resume a disabled integration from each module's last sync time.

    Only for the same portal: another portal is a new integration (delete first).
    """
    _require_live(integration)
    if portal_id is not None and portal_id != integration.portal_id:
        raise Conflict(
            f"integration {integration.id} is connected to portal {integration.portal_id}; "
            f"it cannot be re-enabled with portal {portal_id}. Delete it and connect the "
            "other portal as a new integration."
        )
    if integration.status != IntegrationState.DISABLED:
        return None
    integration.status = IntegrationState.ACTIVE
    session.flush()
    # The resume run republishes the parked events, then pulls (if there is a source).
    return request_run(session, integration, RunKind.RESUME)


def delete_integration(session: Session, integration: Integration) -> int:
    """Disconnect; synced projects stay as standalone projects. Returns their count."""
    _require_live(integration)
    integration.status = IntegrationState.DELETED
    integration.deleted_at = utcnow()
    result = session.execute(
        update(Project)
        .where(Project.integration_id == integration.id, Project.deleted.is_(False))
        .values(standalone=True)
    )
    session.execute(
        update(SyncRun)
        .where(SyncRun.integration_id == integration.id, SyncRun.outcome == RunOutcome.PENDING)
        .values(outcome=RunOutcome.CANCELLED, finished_at=utcnow(), error="integration deleted")
    )
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class IntegrationStatus:
    status: str
    modules: dict[str, ModuleStatus]
    parked: int
    current_run: SyncRun | None
    last_run: SyncRun | None
    dead_letters: int
    last_webhook_at: datetime | None
    last_applied_at: datetime | None

    def view(self) -> IntegrationStatusView:
        """As the status API and CLI show it (the broker's queue depths are added there)."""
        return IntegrationStatusView(
            status=self.status,
            modules=self.modules,
            parked_events=self.parked,
            dead_letters=self.dead_letters,
            last_webhook_at=self.last_webhook_at,
            last_applied_at=self.last_applied_at,
            current_run=run_view(self.current_run) if self.current_run else None,
            last_run=run_view(self.last_run) if self.last_run else None,
            **self._pacing(),
        )

    def _pacing(self) -> dict[str, Any]:
        """Whether the running pull waits on the portal's request budget, and how long
        the portal calls it still has to make take at that budget."""
        portal = (self.current_run.counts or {}).get("portal", {}) if self.current_run else {}
        return {
            "throttled": bool(portal.get("throttled")),
            "expected_seconds_left": portal.get("seconds_left"),
        }


def status(session: Session, integration: Integration) -> IntegrationStatus:
    """State and, per module, last sync time, records synced and open errors.

    The counts (records synced, open errors, parked events, dead letters) are the ones
    the database keeps (``worker.db.counts``), the same figures as counting the rows,
    read in one small query instead of one scan per table.
    """
    cursors = {
        c.module: c
        for c in session.scalars(
            select(SyncCursor).where(SyncCursor.integration_id == integration.id)
        )
    }
    counts = integration_counts(session, integration.id)
    activity = {
        a.module: a
        for a in session.scalars(
            select(IntegrationActivity).where(IntegrationActivity.integration_id == integration.id)
        )
    }
    now = utcnow()
    modules: dict[str, ModuleStatus] = {}
    for spec in MODULES.values():
        if not spec.synced_for(integration.modules or ()):
            continue
        module = spec.module
        table: Any = spec.model  # SyncedRecord, a mixin, does not declare __tablename__
        cursor = cursors.get(module.value)
        seen = activity.get(module.value)
        newest = seen.newest_applied_version if seen else None
        modules[module.value] = ModuleStatus(
            last_sync_time=cursor.last_sync_at if cursor else None,
            watermark=cursor.watermark if cursor else None,
            synced=counts.get(Counter.live_rows(table.__tablename__), 0),
            errors=counts.get(Counter.open_errors(module.value), 0),
            applied=seen.applied if seen else 0,
            refused=seen.refused if seen else 0,
            last_applied_at=seen.last_applied_at if seen else None,
            lag_seconds=round((now - newest).total_seconds(), 3) if newest else None,
        )
    runs = list(
        session.scalars(
            select(SyncRun)
            .where(SyncRun.integration_id == integration.id)
            .order_by(SyncRun.id.desc())
            .limit(2)
        )
    )
    current = next((r for r in runs if r.outcome in OPEN), None)
    last = next((r for r in runs if r.finished_at is not None), None)
    return IntegrationStatus(
        status=IntegrationState.DELETED if integration.deleted_at else integration.status,
        modules=modules,
        parked=counts.get(Counter.PARKED_EVENTS, 0),
        current_run=current,
        last_run=last,
        dead_letters=counts.get(Counter.DEAD_LETTERS, 0),
        last_webhook_at=max(_times(activity, "last_webhook_at"), default=None),
        last_applied_at=max(_times(activity, "last_applied_at"), default=None),
    )


def _times(activity: dict[str, IntegrationActivity], column: str) -> list[datetime]:
    return [t for a in activity.values() if (t := getattr(a, column)) is not None]


def history(session: Session, integration: Integration, limit: int = 100) -> list[SyncRun]:
    """Sync runs, newest first."""
    return list(
        session.scalars(
            select(SyncRun)
            .where(SyncRun.integration_id == integration.id)
            .order_by(SyncRun.id.desc())
            .limit(limit)
        )
    )


def run_view(run: SyncRun) -> RunView:
    """A sync run as the history and status APIs show it."""
    return RunView.model_validate(run)


def _require_live(integration: Integration) -> None:
    if integration.deleted_at is not None:
        raise IntegrationGone(f"integration {integration.id} was deleted")
