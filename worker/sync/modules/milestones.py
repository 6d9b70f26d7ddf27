"""Milestones (V2 "phases"): a project's stages."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import MilestoneData
from schemas.responses import MilestoneRecord
from worker.db import Milestone
from worker.portal import convert_milestone
from worker.sync.columns import RowContext
from worker.sync.modules.spec import PROJECT_RELATION, ModuleSpec, ReadShape
from worker.sync.writers.children import write_children

__all__ = ["SPEC"]


def columns(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, MilestoneData)
    return {
        "project_source_id": data.project_id,
        "name": data.name,
        "status": data.status,
        "start_date": data.start_date,
        "end_date": data.end_date,
    }


SPEC = ModuleSpec(
    module=Module.MILESTONES,
    model=Milestone,
    payload=MilestoneData,
    columns=columns,
    relations=(PROJECT_RELATION,),
    writer=write_children,
    dependencies=(Module.PROJECTS,),
    per_project=True,
    paths=("milestones", "phases"),
    converter=convert_milestone,
    read=ReadShape(MilestoneRecord, ("project_id",)),
)
