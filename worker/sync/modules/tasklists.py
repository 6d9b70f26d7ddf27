"""Task lists: a project's groups of tasks, perhaps under a milestone."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import TasklistData
from schemas.responses import TasklistRecord
from worker.db import Tasklist
from worker.portal import convert_tasklist
from worker.sync.columns import RowContext
from worker.sync.modules.spec import PROJECT_RELATION, ModuleSpec, ReadShape
from worker.sync.writers.children import write_children

__all__ = ["SPEC"]


def columns(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, TasklistData)
    return {
        "project_source_id": data.project_id,
        "name": data.name,
        "milestone_source_id": data.milestone_id,
    }


SPEC = ModuleSpec(
    module=Module.TASKLISTS,
    model=Tasklist,
    payload=TasklistData,
    columns=columns,
    relations=(PROJECT_RELATION,),
    writer=write_children,
    dependencies=(Module.PROJECTS,),
    per_project=True,
    paths=("tasklists",),
    converter=convert_tasklist,
    read=ReadShape(TasklistRecord, ("project_id",)),
)
