"""Invoices billed from synced time, and the record of which time each line consumed.

``InvoiceLineTimesheet`` is what the peers lack: voiding an invoice releases
exactly the timesheets its lines consumed, no others.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from worker.db.base import Base, utcnow

__all__ = [
    "Expense",
    "Invoice",
    "InvoiceLine",
    "InvoiceLineTimesheet",
    "InvoiceStatus",
    "Quote",
    "RecurringInvoice",
    "RecurringRun",
]

Money = Numeric(18, 4)


class InvoiceStatus(StrEnum):
    """``Invoice.status``: issued when created, void once voided (its time released)."""

    ISSUED = "issued"
    VOID = "void"


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("organization_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.ISSUED)
    currency_code: Mapped[str] = mapped_column(String(3))
    billing_type: Mapped[str] = mapped_column(String(32))
    grouping: Mapped[str] = mapped_column(String(32))
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    issue_date: Mapped[date]
    total: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    voided_at: Mapped[datetime | None]

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int]
    description: Mapped[str]
    hours: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    rate: Mapped[Decimal | None] = mapped_column(Money)
    amount: Mapped[Decimal] = mapped_column(Money)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")
    timesheets: Mapped[list[InvoiceLineTimesheet]] = relationship(cascade="all, delete-orphan")


class InvoiceLineTimesheet(Base):
    """One timesheet consumed by one invoice line (while the invoice is not void)."""

    __tablename__ = "invoice_line_timesheets"

    line_id: Mapped[int] = mapped_column(ForeignKey("invoice_lines.id"), primary_key=True)
    timesheet_id: Mapped[int] = mapped_column(ForeignKey("timesheets.id"), primary_key=True)
    minutes: Mapped[int]


Index("ix_invoice_line_timesheets_timesheet", InvoiceLineTimesheet.timesheet_id)


class Expense(Base):
    """A cost on a project; a billable one is offered on the project's next invoice."""

    __tablename__ = "expenses"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    expense_date: Mapped[date]
    description: Mapped[str]
    amount: Mapped[Decimal] = mapped_column(Money)
    billable: Mapped[bool] = mapped_column(default=True)
    # The invoice line that billed it; cleared again when that invoice is voided.
    invoice_line_id: Mapped[int | None] = mapped_column(ForeignKey("invoice_lines.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Quote(Base):
    """An estimate for a project: numbered lines the customer may accept."""

    __tablename__ = "quotes"
    __table_args__ = (UniqueConstraint("organization_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    issue_date: Mapped[date]
    expiry_date: Mapped[date | None]
    currency_code: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[Any]] = mapped_column(default=list)  # [{description, hours, rate, amount}]
    total: Mapped[Decimal] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecurringInvoice(Base):
    """Bills a project's unbilled time every period; ``next_run`` is the next period's start."""

    __tablename__ = "recurring_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str]
    frequency: Mapped[str] = mapped_column(String(16))  # weekly | monthly
    next_run: Mapped[date]
    end_date: Mapped[date | None]
    grouping: Mapped[str] = mapped_column(String(32), default="single")
    amount: Mapped[Decimal | None] = mapped_column(Money)  # fixed-cost projects: per period
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecurringRun(Base):
    """One period of a recurring invoice: unique, so running twice bills once."""

    __tablename__ = "recurring_runs"

    recurring_id: Mapped[int] = mapped_column(ForeignKey("recurring_invoices.id"), primary_key=True)
    period_start: Mapped[date] = mapped_column(primary_key=True)
    period_end: Mapped[date]
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"))
    outcome: Mapped[str] = mapped_column(String(32))
    ran_at: Mapped[datetime] = mapped_column(default=utcnow)
