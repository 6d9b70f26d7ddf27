"""Read models for the API: synced records, scoped to one organization, paginated.

Every query filters on the caller's organization, so another organization's
record is simply not found (the API answers 404, never 403).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from schemas.responses import (
    CustomerRecord,
    RecordView,
    StaffRecord,
    figures_in,
)
from worker.db import (
    Customer,
    ProjectStaff,
    StaffUser,
    SyncedRecord,
)
from worker.errors import NotFound, Refused
from worker.sync import MODULES

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


@dataclass(frozen=True)
class Link:
    """A filter through a link table: ids in ``record`` where ``on`` equals the value."""

    record: Any
    on: Any


@dataclass(frozen=True)
class Resource:
    """One readable collection: its table, the model it is answered as, and the
    filters it allows."""

    model: type[SyncedRecord]
    view: type[RecordView]
    filters: tuple[str, ...] = ()
    links: dict[str, Link] = field(default_factory=dict)
    # Filters over a closed set of values: another value is refused, not an empty page.
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


# The portal modules the API lists under their own names, as their specs say, then
# the invoicing side's own collections.
RESOURCES: dict[str, Resource] = {
    **{
        spec.module.value: Resource(
            spec.model, spec.read.view, spec.read.filters, choices=spec.read.choices
        )
        for spec in MODULES.values()
        if spec.read is not None
    },
    "customers": Resource(Customer, CustomerRecord),
    "staff": Resource(
        StaffUser,
        StaffRecord,
        ("kind",),
        links={"project_id": Link(ProjectStaff.staff_id, ProjectStaff.project_id)},
    ),
}


class InvalidCursor(Refused):
    """The pagination cursor was not one this API handed out."""


class InvalidFilter(Refused):
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
    items: list[RecordView]
    next_cursor: str | None


def serialize(resource: Resource, record: SyncedRecord) -> RecordView:
    """``record`` as its resource's answer. Rates and budgets are in the record's own
    currency; a record without one (tasks, staff) shows at least 2 decimals."""
    currency = getattr(record, "currency_code", None)
    return resource.view.model_validate(record, context=figures_in(currency))


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
) -> RecordView:
    model: Any = resource.model
    record = session.scalars(
        _scoped(resource, organization_id).where(model.id == record_id)
    ).first()
    if record is None:
        raise NotFound(f"no such record {record_id}")
    return serialize(resource, record)
