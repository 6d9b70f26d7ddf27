"""Records synced from the portal (and local ones made on the invoicing side).

Every synced table shares the same bookkeeping (``SyncedRecord``): the portal id
``source_id`` unique per integration, the source version ``source_modified_at``
used for newer-wins, a ``deleted`` tombstone flag, and the full ``payload`` as
received (custom fields included). Relations to other portal records are kept as
portal ids (``*_source_id``) and resolved to billsync ids when the related record
is present.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from worker.db.base import Base, utcnow

__all__ = [
    "BillingStatus",
    "Bug",
    "Customer",
    "Milestone",
    "Project",
    "ProjectStaff",
    "StaffUser",
    "SyncedRecord",
    "Task",
    "Tasklist",
    "Timesheet",
]


class SyncedRecord:
    """Columns every synced record has; see the module docstring."""

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    integration_id: Mapped[str | None] = mapped_column(ForeignKey("integrations.id"))
    source_id: Mapped[str | None] = mapped_column(String(64))
    source_modified_at: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        name = cls.__tablename__  # type: ignore[attr-defined]
        return (
            UniqueConstraint("integration_id", "source_id"),
            Index(f"ix_{name}_organization_id_id", "organization_id", "id"),
        )


class Customer(SyncedRecord, Base):
    """A customer of the organization; ``source_id`` is the portal client id."""

    __tablename__ = "customers"

    name: Mapped[str | None]
    email: Mapped[str | None] = mapped_column(String(320))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    crm_id: Mapped[str | None] = mapped_column(String(64))


class Project(SyncedRecord, Base):
    __tablename__ = "projects"

    name: Mapped[str | None]
    status: Mapped[str | None] = mapped_column(String(32))
    currency_code: Mapped[str | None] = mapped_column(String(3))
    billing_type: Mapped[str | None] = mapped_column(String(32))
    rate: Mapped[Decimal | None]
    budget_value: Mapped[Decimal | None]
    customer_source_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    custom_fields: Mapped[dict[str, Any] | None]
    standalone: Mapped[bool] = mapped_column(default=False)
    crm_id: Mapped[str | None] = mapped_column(String(64))
    # Set on the invoicing side; win over the portal's and syncs never touch them.
    invoice_rate: Mapped[Decimal | None]
    invoice_billing_type: Mapped[str | None] = mapped_column(String(32))


class _ProjectChild:
    project_source_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))


class Milestone(_ProjectChild, SyncedRecord, Base):
    __tablename__ = "milestones"

    name: Mapped[str | None]
    status: Mapped[str | None] = mapped_column(String(32))
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]


class Tasklist(_ProjectChild, SyncedRecord, Base):
    __tablename__ = "tasklists"

    name: Mapped[str | None]
    milestone_source_id: Mapped[str | None] = mapped_column(String(64))


class Task(_ProjectChild, SyncedRecord, Base):
    __tablename__ = "tasks"

    name: Mapped[str | None]
    tasklist_source_id: Mapped[str | None] = mapped_column(String(64))
    milestone_source_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(64))
    billing_type: Mapped[str | None] = mapped_column(String(32))
    rate: Mapped[Decimal | None]
    custom_fields: Mapped[dict[str, Any] | None]
    invoice_rate: Mapped[Decimal | None]  # as Project.invoice_rate


class Bug(_ProjectChild, SyncedRecord, Base):
    __tablename__ = "bugs"

    title: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(64))
    severity: Mapped[str | None] = mapped_column(String(64))


class StaffUser(SyncedRecord, Base):
    """A portal user known to the organization; ``kind`` says how it may be used."""

    __tablename__ = "staff_users"

    name: Mapped[str | None]
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    kind: Mapped[str] = mapped_column(String(32), default="inactive_timesheet_staff")
    # Set on the invoicing side (the portal has no staff rates); syncs never touch it.
    rate: Mapped[Decimal | None]


class ProjectStaff(Base):
    """A staff user who logged time on a project."""

    __tablename__ = "project_staff"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), primary_key=True)


class BillingStatus(StrEnum):
    """Whether a time log's time is billed yet (``Timesheet.billing_status``)."""

    UNBILLED = "unbilled"
    INVOICED = "invoiced"


class Timesheet(_ProjectChild, SyncedRecord, Base):
    """A time log: task log, bug log, or general (project-level) log."""

    __tablename__ = "timesheets"

    task_source_id: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    bug_source_id: Mapped[str | None] = mapped_column(String(64))
    bug_id: Mapped[int | None] = mapped_column(ForeignKey("bugs.id"))
    staff_source_id: Mapped[str | None] = mapped_column(String(64))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    log_date: Mapped[date | None]
    minutes: Mapped[int] = mapped_column(default=0)
    bill_status: Mapped[str | None] = mapped_column(String(16))
    approval_status: Mapped[str | None] = mapped_column(String(16))
    billing_status: Mapped[str] = mapped_column(String(16), default=BillingStatus.UNBILLED)
    name: Mapped[str | None]
    notes: Mapped[str | None] = mapped_column(Text)


Index("ix_customers_match", Customer.organization_id, Customer.email)
Index("ix_staff_users_email", StaffUser.organization_id, StaffUser.email)
Index(
    "ix_timesheets_billing",
    Timesheet.organization_id,
    Timesheet.project_id,
    Timesheet.billing_status,
)
Index("ix_timesheets_task_source", Timesheet.integration_id, Timesheet.task_source_id)
Index("ix_timesheets_bug_source", Timesheet.integration_id, Timesheet.bug_source_id)
for _child in (Milestone, Tasklist, Task, Bug, Timesheet):
    Index(
        f"ix_{_child.__tablename__}_project_source", _child.integration_id, _child.project_source_id
    )
