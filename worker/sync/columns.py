"""What each module's database row looks like, built from a validated event.

Pure functions: payload in, column values out. Relations to other portal records
are named here (``RELATIONS``) and resolved to billsync ids by ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from schemas import Module, WebhookEvent
from schemas.envelope import DeletedEvent
from schemas.payloads import (
    BugData,
    MilestoneData,
    ProjectData,
    TaskData,
    TasklistData,
    TimesheetData,
    UserData,
)
from worker.db import (
    Bug,
    Customer,
    Milestone,
    Project,
    StaffUser,
    SyncedRecord,
    Task,
    Tasklist,
    Timesheet,
    utcnow,
)
from worker.sync.rules.field_map import mapped_custom_fields
from worker.sync.rules.staff import normalize_email
from worker.sync.rules.timesheets import billing_status

__all__ = ["MODELS", "RELATIONS", "Relation", "RowContext", "event_row"]

MODELS: dict[Module, type[SyncedRecord]] = {
    Module.PROJECTS: Project,
    Module.USERS: StaffUser,
    Module.MILESTONES: Milestone,
    Module.TASKLISTS: Tasklist,
    Module.TASKS: Task,
    Module.BUGS: Bug,
    Module.TIMESHEETS: Timesheet,
}


@dataclass(frozen=True)
class Relation:
    """``fk_column`` holds the billsync id of the ``target`` row named by ``source_column``."""

    fk_column: str
    source_column: str
    target: type[SyncedRecord]


_PROJECT = Relation("project_id", "project_source_id", Project)
RELATIONS: dict[Module, tuple[Relation, ...]] = {
    Module.PROJECTS: (Relation("customer_id", "customer_source_id", Customer),),
    Module.USERS: (),
    Module.MILESTONES: (_PROJECT,),
    Module.TASKLISTS: (_PROJECT,),
    Module.TASKS: (_PROJECT,),
    Module.BUGS: (_PROJECT,),
    Module.TIMESHEETS: (
        _PROJECT,
        Relation("task_id", "task_source_id", Task),
        Relation("bug_id", "bug_source_id", Bug),
        Relation("staff_id", "staff_source_id", StaffUser),
    ),
}


@dataclass(frozen=True)
class RowContext:
    """The integration settings that shape a row."""

    organization_id: str
    integration_id: str
    invoiced_before: date | None
    modules: frozenset[str] = frozenset({"projects"})
    field_map: dict[str, Any] = field(default_factory=dict)
    customer_duplication: str = "overwrite"


def _bookkeeping(ctx: RowContext, source_id: str, event: WebhookEvent) -> dict[str, Any]:
    return {
        "organization_id": ctx.organization_id,
        "integration_id": ctx.integration_id,
        "source_id": source_id,
        "source_modified_at": event.modified_at,
        "deleted": isinstance(event, DeletedEvent),
        "updated_at": utcnow(),
    }


def event_row(event: WebhookEvent, ctx: RowContext) -> dict[str, Any]:
    """The row for one event: full columns for an upsert, bookkeeping for a delete."""
    row = _bookkeeping(ctx, event.data.id, event)
    if isinstance(event, DeletedEvent):
        if any(r.source_column == "project_source_id" for r in RELATIONS[event.module]):
            row["project_source_id"] = event.data.project_id
        return row
    row["payload"] = event.data.model_dump(mode="json")
    row.update(_COLUMNS[event.module](event.data, ctx))
    return row


def _project(data: Any, ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, ProjectData)
    return {
        "name": data.name,
        "status": data.status,
        "currency_code": data.currency_code,
        "billing_type": data.billing_type,
        "rate": data.rate,
        "budget_value": data.budget_value,
        "customer_source_id": data.primary_client.id if data.primary_client else None,
        "custom_fields": mapped_custom_fields(data.custom_fields, ctx.field_map.get("projects")),
        "crm_id": (data.model_extra or {}).get("crm_id"),
    }


def _milestone(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, MilestoneData)
    return {
        "project_source_id": data.project_id,
        "name": data.name,
        "status": data.status,
        "start_date": data.start_date,
        "end_date": data.end_date,
    }


def _tasklist(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, TasklistData)
    return {
        "project_source_id": data.project_id,
        "name": data.name,
        "milestone_source_id": data.milestone_id,
    }


def _task(data: Any, ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, TaskData)
    return {
        "project_source_id": data.project_id,
        "name": data.name,
        "tasklist_source_id": data.tasklist_id,
        "milestone_source_id": data.milestone_id,
        "status": data.status,
        "billing_type": data.billing_type,
        "rate": data.rate,
        "custom_fields": mapped_custom_fields(data.custom_fields, ctx.field_map.get("tasks")),
    }


def _bug(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, BugData)
    return {
        "project_source_id": data.project_id,
        "title": data.title,
        "status": data.status,
        "severity": data.severity,
    }


def _user(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, UserData)
    return {
        "name": data.name,
        "email": normalize_email(data.email),
        "role": data.role,
        "active": data.active,
    }


def _timesheet(data: Any, ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, TimesheetData)
    return {
        "project_source_id": data.project_id,
        "task_source_id": data.task_id,
        "bug_source_id": data.bug_id,
        "staff_source_id": data.owner.id,
        "log_date": data.log_date,
        "minutes": data.minutes,
        "bill_status": data.bill_status,
        "approval_status": data.approval_status,
        "billing_status": billing_status(data.log_date, ctx.invoiced_before),
        "name": data.name,
        "notes": data.notes,
    }


_COLUMNS = {
    Module.PROJECTS: _project,
    Module.USERS: _user,
    Module.MILESTONES: _milestone,
    Module.TASKLISTS: _tasklist,
    Module.TASKS: _task,
    Module.BUGS: _bug,
    Module.TIMESHEETS: _timesheet,
}
