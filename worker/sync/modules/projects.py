"""Projects: the parents of every other record but users; synced with a primary customer."""

from __future__ import annotations

from typing import Any

from schemas import Module
from schemas.payloads import ProjectData
from schemas.responses import ProjectRecord
from worker.db import Customer, Project
from worker.portal import PortalClient, convert_project
from worker.sync.columns import Relation, RowContext
from worker.sync.modules.spec import ModuleSpec, ReadShape
from worker.sync.rules.field_map import mapped_custom_fields
from worker.sync.writers.projects import link_clients, write_projects

__all__ = ["SPEC"]


def columns(data: Any, ctx: RowContext) -> dict[str, Any]:
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


def _clients(client: PortalClient, record: dict[str, Any]) -> dict[str, Any]:
    # The project listing does not name the primary client: its clients are read apart.
    return {"clients": client.project_clients(str(record["id"]))}


SPEC = ModuleSpec(
    module=Module.PROJECTS,
    model=Project,
    payload=ProjectData,
    columns=columns,
    relations=(Relation("customer_id", "customer_source_id", Customer),),
    writer=write_projects,
    on_outdated=link_clients,
    paths=("projects",),
    converter=convert_project,
    related=_clients,
    read=ReadShape(ProjectRecord, ("customer_id",)),
)
