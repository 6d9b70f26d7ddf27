"""Bugs (V3 "issues"): time can be logged against them like against tasks."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import BugData
from schemas.responses import BugRecord
from worker.db import Bug
from worker.portal import convert_bug
from worker.sync.columns import RowContext
from worker.sync.modules.spec import PROJECT_RELATION, ModuleSpec, ReadShape
from worker.sync.writers.children import write_children

__all__ = ["SPEC"]


def columns(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, BugData)
    return {
        "project_source_id": data.project_id,
        "title": data.title,
        "status": data.status,
        "severity": data.severity,
    }


SPEC = ModuleSpec(
    module=Module.BUGS,
    model=Bug,
    payload=BugData,
    columns=columns,
    relations=(PROJECT_RELATION,),
    writer=write_children,
    dependencies=(Module.PROJECTS,),
    per_project=True,
    paths=("issues", "bugs"),
    converter=convert_bug,
    read=ReadShape(BugRecord, ("project_id",)),
)
