"""Read models for the API: synced records, scoped to one organization, paginated.

Every query filters on the caller's organization, so another organization's
record is simply not found (the API answers 404, never 403).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from schemas.numbers import rate_text
from worker.db import (
    Bug,
    Customer,
    Milestone,
    Project,
    ProjectStaff,
    StaffUser,
    SyncedRecord,
    Task,
    Tasklist,
    Timesheet,
)
from worker.errors import NotFound
from worker.sync import INVOICED, UNBILLED

__all__ = [
    "RESOURCES",
    "InvalidCursor",
    "InvalidFilter",
    "Page",
    "Resource",
    "serialize",
    "get_record",
    "list_records",
]

_COMMON = ("id", "source_id", "integration_id", "source_modified_at")


@dataclass(frozen=True)
class Link:
    """A filter through a link table: ids in ``record`` where ``on`` equals the value."""

    record: Any
    on: Any


@dataclass(frozen=True)
class Resource:
    """One readable collection: its model, public fields and allowed filters."""

    model: type[SyncedRecord]
    fields: tuple[str, ...]
    filters: tuple[str, ...] = ()
    links: dict[str, Link] = field(default_factory=dict)
    # Filters over a closed set of values: another value is refused, not an empty page.
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


RESOURCES: dict[str, Resource] = {
    "projects": Resource(
        Project,
        (
            *_COMMON,
            "name",
            "status",
            "currency_code",
            "billing_type",
            "rate",
            "budget_value",
            "customer_id",
            "standalone",
            "custom_fields",
        ),
        ("customer_id",),
    ),
    "milestones": Resource(
        Milestone,
        (*_COMMON, "project_id", "name", "status", "start_date", "end_date"),
        ("project_id",),
    ),
    "tasklists": Resource(
        Tasklist, (*_COMMON, "project_id", "name", "milestone_source_id"), ("project_id",)
    ),
    "tasks": Resource(
        Task,
        (
            *_COMMON,
            "project_id",
            "name",
            "tasklist_source_id",
            "milestone_source_id",
            "status",
            "billing_type",
            "rate",
            "custom_fields",
        ),
        ("project_id",),
    ),
    "bugs": Resource(Bug, (*_COMMON, "project_id", "title", "status", "severity"), ("project_id",)),
    "timesheets": Resource(
        Timesheet,
        (
            *_COMMON,
            "project_id",
            "task_id",
            "bug_id",
            "staff_id",
            "log_date",
            "minutes",
            "bill_status",
            "approval_status",
            "billing_status",
            "name",
            "notes",
        ),
        ("project_id", "billing_status", "task_id", "bug_id", "staff_id"),
        choices={"billing_status": (UNBILLED, INVOICED)},
    ),
    "customers": Resource(Customer, (*_COMMON, "name", "email", "currency_code", "crm_id")),
    "staff": Resource(
        StaffUser,
        (*_COMMON, "name", "email", "role", "active", "kind"),
        ("kind",),
        links={"project_id": Link(ProjectStaff.staff_id, ProjectStaff.project_id)},
    ),
}


class InvalidCursor(ValueError):
    """The pagination cursor was not one this API handed out."""


class InvalidFilter(ValueError):
    """A filter value of the wrong type (for example a non-numeric id)."""


def _typed(column: Any, name: str, value: str) -> Any:
    if column.type.python_type is int:
        try:
            return int(value)
        except ValueError as exc:
            raise InvalidFilter(f"{name} must be an integer id, got {value!r}") from exc
    return value


def _check_choice(resource: Resource, name: str, value: str) -> None:
    allowed = resource.choices.get(name)
    if allowed is not None and value not in allowed:
        raise InvalidFilter(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def _json_value(value: Any, currency: str | None) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Rates and budgets, fixed-point by the one rule (schemas.numbers); a record
        # without a currency of its own (tasks, staff) shows at least 2 decimals.
        return rate_text(value, currency)
    return value


def serialize(resource: Resource, record: SyncedRecord) -> dict[str, Any]:
    currency = getattr(record, "currency_code", None)
    return {name: _json_value(getattr(record, name), currency) for name in resource.fields}


def _scoped(resource: Resource, organization_id: str) -> Select[Any]:
    model: Any = resource.model
    return select(model).where(model.organization_id == organization_id, model.deleted.is_(False))


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        if prefix != "id":
            raise ValueError(cursor)
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor(f"invalid cursor {cursor!r}") from exc


def list_records(
    session: Session,
    resource: Resource,
    organization_id: str,
    *,
    filters: dict[str, str],
    limit: int,
    cursor: str | None,
) -> Page:
    """One page of live records, in id order; ``filters`` are exact matches."""
    model: Any = resource.model
    stmt = _scoped(resource, organization_id)
    for name, value in filters.items():
        link = resource.links.get(name)
        if link is not None:
            linked = select(link.record).where(link.on == _typed(link.on, name, value))
            stmt = stmt.where(model.id.in_(linked))
            continue
        _check_choice(resource, name, value)
        column = getattr(model, name)
        stmt = stmt.where(column == _typed(column, name, value))
    if cursor:
        stmt = stmt.where(model.id > decode_cursor(cursor))
    rows = list(session.scalars(stmt.order_by(model.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        [serialize(resource, r) for r in rows],
        encode_cursor(rows[-1].id) if more and rows else None,
    )


def get_record(
    session: Session, resource: Resource, organization_id: str, record_id: int
) -> dict[str, Any]:
    model: Any = resource.model
    record = session.scalars(
        _scoped(resource, organization_id).where(model.id == record_id)
    ).first()
    if record is None:
        raise NotFound(f"no such record {record_id}")
    return serialize(resource, record)
