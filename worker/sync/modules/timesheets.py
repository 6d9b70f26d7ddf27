"""Time logs: what gets billed; synced only where the integration selects them."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import TimesheetData
from schemas.responses import TimesheetRecord
from worker.db import BillingStatus, Bug, StaffUser, Task, Timesheet
from worker.portal import convert_timesheet
from worker.sync.columns import Relation, RowContext
from worker.sync.modules.spec import PROJECT_RELATION, ModuleSpec, ReadShape
from worker.sync.rules.timesheets import billing_status
from worker.sync.writers.timesheets import write_timesheets

__all__ = ["SPEC"]


def columns(data: Any, ctx: RowContext) -> dict[str, Any]:
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


SPEC = ModuleSpec(
    module=Module.TIMESHEETS,
    model=Timesheet,
    payload=TimesheetData,
    columns=columns,
    relations=(
        PROJECT_RELATION,
        Relation("task_id", "task_source_id", Task),
        Relation("bug_id", "bug_source_id", Bug),
        Relation("staff_id", "staff_source_id", StaffUser),
    ),
    writer=write_timesheets,
    dependencies=(Module.PROJECTS, Module.TASKS, Module.BUGS),
    late_links=True,
    per_project=True,
    windowed=True,
    converter=convert_timesheet,
    optional=True,
    read=ReadShape(
        TimesheetRecord,
        ("project_id", "billing_status", "task_id", "bug_id", "staff_id"),
        choices={"billing_status": (BillingStatus.UNBILLED, BillingStatus.INVOICED)},
    ),
)
