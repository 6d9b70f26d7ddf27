"""Time logs: only billable, approved logs under synced records; invoiced ones are locked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from schemas import QueueMessage
from schemas.envelope import TimesheetEvent
from worker.db import BillingStatus, Bug, Project, ProjectStaff, SyncError, Task, Timesheet
from worker.sync.columns import RowShape
from worker.sync.rules.reasons import (
    CONFLICT_INVOICED,
    NO_PRIMARY_CUSTOMER,
    PROJECT_WITHOUT_PRIMARY_CUSTOMER,
    RELATED_BUG_MISSING,
    RELATED_PROJECT_MISSING,
    RELATED_TASK_MISSING,
    Reason,
)
from worker.sync.rules.timesheets import (
    ProjectState,
    TimesheetFacts,
    decide_timesheet,
    is_locked,
    withdraws,
)
from worker.sync.upsert import insert_missing, key_filter
from worker.sync.writers.common import (
    BatchContext,
    Key,
    ModuleResult,
    ids_by_source,
    is_newer,
    record_key,
    refusal,
    resolve_relations,
    write_rows,
)
from worker.sync.writers.users import ensure_staff

__all__ = ["write_timesheets"]


@dataclass(frozen=True)
class _Stored:
    version: Any
    deleted: bool
    billing_status: str
    payload: dict[str, Any] | None


def write_timesheets(
    batch: BatchContext, shape: RowShape, messages: Sequence[QueueMessage]
) -> ModuleResult:
    """Apply the timesheet rules; a refused update withdraws the log if it was unbilled."""
    result = ModuleResult()
    stored = _stored(batch, messages)
    lookups = _Lookups.load(batch, messages)
    rows = []
    for message in messages:
        key = record_key(message)
        row = batch.row(shape, message)
        current = stored.get(key)
        if current is not None and not is_newer(message, current.version, current.deleted):
            rows.append(row)  # stale: the upsert leaves the stored version alone
            continue
        if current is not None and is_locked(current.billing_status):
            batch.refusals.append(
                refusal(message, CONFLICT_INVOICED, details=_both_versions(message, current))
            )
            result.refused.add(key)
            continue
        if isinstance(message.event, TimesheetEvent):
            facts = lookups.facts(message)
            reason = decide_timesheet(message.event.data, facts)
            if reason is not None:
                batch.refusals.append(
                    refusal(message, reason, depends_on=_waits_for(message.event, reason))
                )
                result.refused.add(key)
                if not withdraws(reason):
                    continue
                row = {**row, "deleted": True}  # withdrawn: no longer billable here
            elif (
                facts.project is ProjectState.DELETED
                and row["billing_status"] != BillingStatus.INVOICED
            ):
                row = {**row, "deleted": True}
        rows.append(row)
    _link_owners(batch, messages, rows)
    resolve_relations(batch, shape.relations, rows)
    written = write_rows(batch, Timesheet, rows, keep_on_update=("billing_status",))
    result.applied = written - result.refused
    _add_project_staff(batch, [r for r in rows if not r["deleted"] and _key(r) in result.applied])
    return result


def _key(row: dict[str, Any]) -> Key:
    return (row["integration_id"], row["source_id"])


def _stored(batch: BatchContext, messages: Sequence[QueueMessage]) -> dict[Key, _Stored]:
    found = batch.stored(Timesheet, [record_key(m) for m in messages])
    # The payload only for an invoiced log a newer version would change: the conflict
    # keeps both versions.
    locked = [
        key
        for m in messages
        if (key := record_key(m)) in found
        and is_locked(found[key].billing_status or "")
        and is_newer(m, found[key].version, found[key].deleted)
    ]
    payloads: dict[Key, Any] = {}
    if locked:
        rows = batch.session.execute(
            select(Timesheet.integration_id, Timesheet.source_id, Timesheet.payload).where(
                key_filter(batch.session, Timesheet, set(locked))
            )
        )
        payloads = {(i, s): p for i, s, p in rows}
    return {
        key: _Stored(v.version, v.deleted, v.billing_status or "", payloads.get(key))
        for key, v in found.items()
    }


@dataclass(frozen=True)
class _Lookups:
    """Which related records exist, for all logs of the batch at once."""

    projects: dict[Key, int]
    deleted_projects: set[Key]
    refused_projects: set[Key]
    tasks: dict[Key, int]
    bugs: dict[Key, int]
    contexts: dict[str, frozenset[str]]

    @classmethod
    def load(cls, batch: BatchContext, messages: Sequence[QueueMessage]) -> _Lookups:
        logs = [
            (m.integration_id, m.event.data)
            for m in messages
            if isinstance(m.event, TimesheetEvent)
        ]
        session = batch.session
        project_keys = {(i, d.project_id) for i, d in logs}
        projects = ids_by_source(batch, Project, project_keys, live_only=True)
        deleted = ids_by_source(batch, Project, project_keys).keys() - projects.keys()
        missing = project_keys - projects.keys() - deleted
        # Refused for lack of a primary customer: earlier (error summary) or in this batch.
        refused = {
            (r.integration_id, r.source_id)
            for r in batch.refusals
            if r.module == "projects" and r.reason is NO_PRIMARY_CUSTOMER
        }
        # Only an integration with open project errors can have such a refusal stored.
        unknown = {k for k in missing - refused if batch.has_open_errors(k[0], "projects")}
        if unknown:
            refused |= {
                (i, s)
                for i, s in session.execute(
                    select(SyncError.integration_id, SyncError.source_id).where(
                        key_filter(session, SyncError, unknown),
                        SyncError.module == "projects",
                        SyncError.reason == NO_PRIMARY_CUSTOMER.code,
                        SyncError.resolved.is_(False),
                    )
                )
            }
        return cls(
            projects=projects,
            deleted_projects=set(deleted),
            refused_projects=refused,
            # A deleted task or bug was synced: its logs keep pointing at it.
            tasks=ids_by_source(batch, Task, {(i, d.task_id) for i, d in logs if d.task_id}),
            bugs=ids_by_source(batch, Bug, {(i, d.bug_id) for i, d in logs if d.bug_id}),
            contexts={i: c.modules for i, c in batch.integrations.items()},
        )

    def facts(self, message: QueueMessage) -> TimesheetFacts:
        assert isinstance(message.event, TimesheetEvent)
        data = message.event.data
        integration = message.integration_id
        project_key = (integration, data.project_id)
        if project_key in self.projects:
            project = ProjectState.SYNCED
        elif project_key in self.deleted_projects:
            project = ProjectState.DELETED
        elif project_key in self.refused_projects:
            project = ProjectState.NO_PRIMARY_CUSTOMER
        else:
            project = ProjectState.MISSING
        return TimesheetFacts(
            module_selected="timesheets" in self.contexts[integration],
            project=project,
            task_synced=(integration, data.task_id or "") in self.tasks,
            bug_synced=(integration, data.bug_id or "") in self.bugs,
        )


def _waits_for(event: TimesheetEvent, reason: Reason) -> str | None:
    """The portal id of the record whose arrival heals this refusal."""
    if reason in (RELATED_PROJECT_MISSING, PROJECT_WITHOUT_PRIMARY_CUSTOMER):
        return event.data.project_id
    if reason is RELATED_TASK_MISSING:
        return event.data.task_id
    if reason is RELATED_BUG_MISSING:
        return event.data.bug_id
    return None


def _both_versions(message: QueueMessage, current: _Stored) -> dict[str, Any]:
    return {
        "invoiced": {"modified_at": current.version.isoformat(), "data": current.payload},
        "source": {
            "modified_at": message.event.modified_at.isoformat(),
            "action": message.event.action.value,
            "data": message.event.data.model_dump(mode="json"),
        },
    }


def _link_owners(
    batch: BatchContext, messages: Sequence[QueueMessage], rows: list[dict[str, Any]]
) -> None:
    """Make every accepted log's owner a staff user and point the log at it."""
    live = {_key(r) for r in rows if not r["deleted"]}
    owners = [
        (batch.integrations[m.integration_id], m.event.data.owner)
        for m in messages
        if isinstance(m.event, TimesheetEvent) and record_key(m) in live
    ]
    if owners:
        ensure_staff(batch, owners)


def _add_project_staff(batch: BatchContext, rows: list[dict[str, Any]]) -> None:
    """The owner of a synced log becomes staff of the log's project."""
    pairs = {
        (r["project_id"], r["staff_id"]) for r in rows if r.get("project_id") and r.get("staff_id")
    }
    insert_missing(
        batch.session,
        ProjectStaff,
        [{"project_id": p, "staff_id": s} for p, s in sorted(pairs)],
        key=("project_id", "staff_id"),
    )
