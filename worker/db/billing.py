"""Invoices billed from synced time, and the record of which time each line consumed.

``InvoiceLineTimesheet`` is what the peers lack: voiding an invoice releases
exactly the timesheets its lines consumed, no others.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from worker.db.base import Base, utcnow

__all__ = ["Invoice", "InvoiceLine", "InvoiceLineTimesheet"]

Money = Numeric(18, 4)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("organization_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="issued")  # issued | void
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
