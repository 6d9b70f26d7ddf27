"""What a synced row is made of, whatever its module: the integration settings that
shape it (``RowContext``), the relations it names (``Relation``), and the row built
from a validated event (``event_row``).

Each module's own columns are declared with its spec (``worker.sync.modules``);
``RowShape`` is the part of a spec that writers and ``event_row`` read, so that
they need not import the registry that imports them. Relations to other portal
records are resolved to billsync ids by the writers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from schemas import Module, WebhookEvent
from schemas.envelope import DeletedEvent
from worker.db import SyncedRecord, utcnow

__all__ = ["Columns", "Relation", "RowContext", "RowShape", "event_row"]


@dataclass(frozen=True)
class RowContext:
    """The integration settings that shape a row."""

    organization_id: str
    integration_id: str
    invoiced_before: date | None
    modules: frozenset[str] = frozenset({"projects"})
    field_map: dict[str, Any] = field(default_factory=dict)
    customer_duplication: str = "overwrite"


@dataclass(frozen=True)
class Relation:
    """``fk_column`` holds the billsync id of the ``target`` row named by ``source_column``."""

    fk_column: str
    source_column: str
    target: type[SyncedRecord]


# A validated payload and its integration's settings → the module's own column values.
Columns = Callable[[Any, RowContext], dict[str, Any]]


class RowShape(Protocol):
    """What writing a module's rows needs to know of it (a ``ModuleSpec`` is one)."""

    @property
    def module(self) -> Module: ...

    @property
    def model(self) -> type[SyncedRecord]: ...

    @property
    def relations(self) -> tuple[Relation, ...]: ...

    @property
    def columns(self) -> Columns: ...

    @property
    def per_project(self) -> bool: ...


def _bookkeeping(ctx: RowContext, source_id: str, event: WebhookEvent) -> dict[str, Any]:
    return {
        "organization_id": ctx.organization_id,
        "integration_id": ctx.integration_id,
        "source_id": source_id,
        "source_modified_at": event.modified_at,
        "deleted": isinstance(event, DeletedEvent),
        "updated_at": utcnow(),
    }


def event_row(shape: RowShape, event: WebhookEvent, ctx: RowContext) -> dict[str, Any]:
    """The row for one event: full columns for an upsert, bookkeeping for a delete."""
    row = _bookkeeping(ctx, event.data.id, event)
    if isinstance(event, DeletedEvent):
        if shape.per_project:
            row["project_source_id"] = event.data.project_id
        return row
    row["payload"] = event.data.model_dump(mode="json")
    row.update(shape.columns(event.data, ctx))
    return row
