"""Expenses of a project. A billable one goes on the project's next invoice; once
billed it is locked until that invoice is voided."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.responses import ExpenseView, Figure
from worker.accounts import owned
from worker.billing.invoices import known_currency, project_of
from worker.db import Expense, Project
from worker.errors import Conflict

__all__ = [
    "create_expense",
    "delete_expense",
    "expense_currency",
    "expense_view",
    "list_expenses",
    "update_expense",
]


def create_expense(
    session: Session,
    organization_id: str,
    project_id: int,
    *,
    expense_date: date,
    description: str,
    amount: Decimal,
    billable: bool,
) -> Expense:
    project = project_of(session, organization_id, project_id)
    expense = Expense(
        organization_id=organization_id,
        project_id=project.id,
        expense_date=expense_date,
        description=description,
        amount=amount,
        billable=billable,
    )
    session.add(expense)
    session.flush()
    return expense


def list_expenses(session: Session, organization_id: str, project_id: int) -> list[Expense]:
    project = project_of(session, organization_id, project_id)
    return list(
        session.scalars(
            select(Expense).where(Expense.project_id == project.id).order_by(Expense.id)
        )
    )


def update_expense(
    session: Session, organization_id: str, expense_id: int, changes: dict[str, Any]
) -> Expense:
    expense = _unbilled(session, organization_id, expense_id, "changed")
    for name, value in changes.items():
        setattr(expense, name, value)
    return expense


def delete_expense(session: Session, organization_id: str, expense_id: int) -> None:
    session.delete(_unbilled(session, organization_id, expense_id, "deleted"))


def expense_currency(session: Session, expense: Expense) -> str | None:
    """The currency an expense is billed in: its project's."""
    return known_currency(session, session.get_one(Project, expense.project_id))


def expense_view(expense: Expense, currency: str | None) -> ExpenseView:
    """An expense; ``currency`` is its project's (see ``expense_currency``)."""
    return ExpenseView(
        id=expense.id,
        project_id=expense.project_id,
        date=expense.expense_date,
        description=expense.description,
        amount=Figure(expense.amount, currency),
        billable=expense.billable,
        invoiced=expense.invoice_line_id is not None,
    )


def _unbilled(session: Session, organization_id: str, expense_id: int, verb: str) -> Expense:
    expense = owned(session, Expense, expense_id, organization_id, "expense")
    if expense.invoice_line_id is not None:
        raise Conflict(f"expense {expense_id} is invoiced; void the invoice before it is {verb}")
    return expense
