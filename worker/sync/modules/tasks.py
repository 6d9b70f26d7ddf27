"""Tasks: what time is logged against, with their billing type and rate."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import TaskData
from schemas.responses import TaskRecord
from worker.db import Task
from worker.portal import convert_task
from worker.sync.columns import RowContext
from worker.sync.modules.spec import PROJECT_RELATION, ModuleSpec, ReadShape
from worker.sync.rules.field_map import mapped_custom_fields
from worker.sync.writers.children import write_children

__all__ = ["SPEC"]


def columns(data: Any, ctx: RowContext) -> dict[str, Any]:
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


SPEC = ModuleSpec(
    module=Module.TASKS,
    model=Task,
    payload=TaskData,
    columns=columns,
    relations=(PROJECT_RELATION,),
    writer=write_children,
    dependencies=(Module.PROJECTS,),
    per_project=True,
    paths=("tasks",),
    converter=convert_task,
    read=ReadShape(TaskRecord, ("project_id",)),
)
