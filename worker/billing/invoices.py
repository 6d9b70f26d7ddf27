"""Billing synced time: invoices for a project (or chosen milestones, task lists, tasks),
exact un-invoicing on void, and the unbilled summary; what the time costs is
``worker.billing.pricing``'s. Amounts are ``Decimal`` in the customer's currency.

Creating an invoice locks the organization's row, so concurrent requests are
serialized and never bill a timesheet twice; each line records the timesheets it
consumed, so a void releases exactly those.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from schemas import Module, QueueMessage, event_adapter
from schemas.responses import InvoiceView, UnbilledGroup, UnbilledSummary, figures_in
from worker.accounts import owned
from worker.billing.pricing import (
    FIXED_COST,
    GROUP_KEYS,
    GROUPINGS,
    Pricing,
    RateHolder,
    billing_method,
    priced_lines,
    priced_totals,
    round_money,
)
from worker.db import (
    BillingStatus,
    Customer,
    Expense,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Milestone,
    Organization,
    Project,
    SyncError,
    Task,
    Tasklist,
    Timesheet,
    utcnow,
)
from worker.errors import Conflict
from worker.sync import CONFLICT_INVOICED, apply_batch

__all__ = [
    "billing_method",
    "GROUPINGS",
    "currency_of",
    "next_number",
    "project_of",
    "InvoiceRequest",
    "NothingToInvoice",
    "RateHolder",
    "Scope",
    "create_invoice",
    "invoice_view",
    "known_currency",
    "round_money",
    "unbilled_summary",
    "void_invoice",
]


# What the amount columns hold: Numeric(18, 4).
MONEY_LIMIT = Decimal(10) ** 14


class NothingToInvoice(Conflict):
    """No unbilled time in the chosen scope (or no fixed amount for a fixed-cost project)."""


@dataclass(frozen=True)
class Scope:
    """Which time to bill: the whole project unless ids are given; optional date range."""

    milestone_ids: tuple[int, ...] = ()
    tasklist_ids: tuple[int, ...] = ()
    task_ids: tuple[int, ...] = ()
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class InvoiceRequest:
    project_id: int
    scope: Scope = field(default_factory=Scope)
    grouping: str = "single"
    issue_date: date | None = None
    fixed_amount: Decimal | None = None  # fixed-cost projects: a part of the fixed amount


# -- creating ---------------------------------------------------------------------------


def create_invoice(session: Session, organization_id: str, request: InvoiceRequest) -> Invoice:
    """Bill the project's unbilled time in scope (or its fixed amount) as one invoice."""
    if request.grouping not in GROUPINGS:
        raise ValueError(f"group by one of {', '.join(GROUPINGS)}")
    # One invoice at a time per organization: numbers stay gapless, time is billed once.
    session.execute(
        select(Organization.id).where(Organization.id == organization_id).with_for_update()
    )
    project = project_of(session, organization_id, request.project_id)
    currency = currency_of(session, project)
    billing_type = billing_method(project)
    invoice = Invoice(
        organization_id=organization_id,
        project_id=project.id,
        customer_id=project.customer_id,
        number=next_number(session, Invoice, organization_id, "INV"),
        currency_code=currency,
        billing_type=billing_type,
        grouping=request.grouping,
        scope=_scope_json(request.scope),
        issue_date=request.issue_date or utcnow().date(),
        total=Decimal(0),
    )
    expenses = _billable_expenses(session, project, request.scope)
    if billing_type == FIXED_COST:
        lines = [_fixed_line(project, request.fixed_amount, currency)]
    else:
        timesheets = _unbilled(session, project, request.scope, lock=True)
        if not timesheets and not expenses:
            raise NothingToInvoice(f"no unbilled time in scope for project {project.id}")
        pricing = Pricing.load(session, project, billing_type, timesheets)
        lines = priced_lines(timesheets, request.grouping, pricing, currency)
        session.execute(
            update(Timesheet)
            .where(Timesheet.id.in_([t.id for t in timesheets]))
            .values(billing_status=BillingStatus.INVOICED)
        )
    expense_lines = [
        InvoiceLine(
            position=len(lines) + n,
            description=f"Expense: {expense.description}",
            hours=Decimal(0),
            rate=None,
            amount=round_money(expense.amount, currency),
        )
        for n, expense in enumerate(expenses, start=1)
    ]
    invoice.lines = lines + expense_lines
    invoice.total = sum((line.amount for line in invoice.lines), Decimal(0))
    amounts = [invoice.total, *(line.amount for line in invoice.lines)]
    if any(abs(amount) >= MONEY_LIMIT for amount in amounts):
        raise Conflict(
            f"the invoice's total ({invoice.total} {currency}) is over what an invoice can "
            f"hold (less than {MONEY_LIMIT:,}); bill the time in parts (a scope or dates)"
        )
    session.add(invoice)
    session.flush()
    for expense, line in zip(expenses, expense_lines, strict=True):
        expense.invoice_line_id = line.id
    return invoice


def _billable_expenses(session: Session, project: Project, scope: Scope) -> list[Expense]:
    """Billable expenses not billed yet (in the date range, if any): the next invoice's."""
    stmt = select(Expense).where(
        Expense.project_id == project.id,
        Expense.billable.is_(True),
        Expense.invoice_line_id.is_(None),
    )
    if scope.date_from:
        stmt = stmt.where(Expense.expense_date >= scope.date_from)
    if scope.date_to:
        stmt = stmt.where(Expense.expense_date <= scope.date_to)
    return list(session.scalars(stmt.order_by(Expense.id).with_for_update()))


def _fixed_line(project: Project, amount: Decimal | None, currency: str) -> InvoiceLine:
    fixed = amount if amount is not None else project.budget_value
    if fixed is None or fixed <= 0:
        raise NothingToInvoice(
            f"project {project.id} is billed at a fixed cost but has no budget value; "
            "give the amount to invoice"
        )
    return InvoiceLine(
        position=1,
        description=f"{project.name}: fixed cost",
        hours=Decimal(0),
        rate=None,
        amount=round_money(fixed, currency),
    )


# -- voiding ----------------------------------------------------------------------------


def void_invoice(session: Session, organization_id: str, invoice_id: int) -> list[int]:
    """Void the invoice; exactly the timesheets it consumed become unbilled again (its
    expenses billable again), and source edits refused while they were locked
    (``conflict_invoiced``) are applied.

    Returns the released timesheet ids.
    """
    invoice = owned(session, Invoice, invoice_id, organization_id, "invoice", for_update=True)
    if invoice.status == InvoiceStatus.VOID:
        raise Conflict(f"invoice {invoice.number} is already void")
    invoice.status, invoice.voided_at = InvoiceStatus.VOID, utcnow()
    released = [c.timesheet_id for line in invoice.lines for c in line.timesheets]
    session.execute(
        update(Expense)
        .where(Expense.invoice_line_id.in_([line.id for line in invoice.lines]))
        .values(invoice_line_id=None)
    )
    session.execute(
        update(Timesheet)
        .where(Timesheet.id.in_(released), Timesheet.billing_status == BillingStatus.INVOICED)
        .values(billing_status=BillingStatus.UNBILLED)
    )
    _apply_parked_edits(session, released)
    return released


def _apply_parked_edits(session: Session, timesheet_ids: Sequence[int]) -> None:
    keys = session.execute(
        select(Timesheet.integration_id, Timesheet.source_id).where(
            Timesheet.id.in_(timesheet_ids), Timesheet.integration_id.is_not(None)
        )
    ).all()
    conditions = [
        (SyncError.integration_id == integration_id) & (SyncError.source_id == source_id)
        for integration_id, source_id in keys
    ]
    if not conditions:
        return
    parked = session.scalars(
        select(SyncError).where(
            SyncError.module == Module.TIMESHEETS,
            SyncError.reason == CONFLICT_INVOICED.code,
            SyncError.resolved.is_(False),
            or_(*conditions),
        )
    ).all()
    messages = [
        QueueMessage(
            event_id=f"void-replay-{error.id}-{error.count}",
            integration_id=error.integration_id,
            source="replay",
            event=event_adapter.validate_python(error.last_payload),
        )
        for error in parked
        if error.last_payload
    ]
    if messages:
        apply_batch(session, messages)


# -- reading ----------------------------------------------------------------------------


def unbilled_summary(session: Session, organization_id: str, project_id: int) -> UnbilledSummary:
    """Hours and amount not yet invoiced, in total, by task and by staff user."""
    project = project_of(session, organization_id, project_id)
    currency = currency_of(session, project)
    timesheets = _unbilled(session, project, Scope(), lock=False)
    billing_type = billing_method(project)
    pricing = Pricing.load(session, project, billing_type, timesheets)

    def summarize(
        key: Callable[[Timesheet], Any], name: Callable[[Timesheet], str]
    ) -> list[UnbilledGroup]:
        rows = []
        ordered = sorted(timesheets, key=lambda t: str(key(t)))
        for _, members in itertools.groupby(ordered, key=lambda t: str(key(t))):
            group = list(members)
            hours, amount = priced_totals(group, pricing, currency)
            rows.append(UnbilledGroup(name=name(group[0]), hours=hours, amount=amount))
        return rows

    hours, amount = priced_totals(timesheets, pricing, currency)
    return UnbilledSummary(
        project_id=project.id,
        currency_code=currency,
        billing_type=billing_type,
        hours=hours,
        amount=amount,
        by_task=summarize(GROUP_KEYS["task"], pricing.work),
        by_staff=summarize(GROUP_KEYS["staff"], lambda t: pricing.describe("staff", t)),
    )


def invoice_view(invoice: Invoice) -> InvoiceView:
    """An invoice as the API and CLI show it (figures in the invoice's currency)."""
    return InvoiceView.model_validate(invoice, context=figures_in(invoice.currency_code))


def project_of(session: Session, organization_id: str, project_id: int) -> Project:
    return owned(session, Project, project_id, organization_id, "project")


def currency_of(session: Session, project: Project) -> str:
    """The currency the project is billed in: its customer's, else its own."""
    currency = known_currency(session, project)
    if not currency:
        raise Conflict(f"project {project.id} has no currency (neither it nor its customer)")
    return currency


def known_currency(session: Session, project: Project) -> str | None:
    """The project's billing currency, or None where neither it nor its customer has
    one (a figure can still be shown, in the default minor units)."""
    customer = session.get(Customer, project.customer_id) if project.customer_id else None
    return (customer.currency_code if customer else None) or project.currency_code


def _unbilled(session: Session, project: Project, scope: Scope, *, lock: bool) -> list[Timesheet]:
    stmt = select(Timesheet).where(
        Timesheet.project_id == project.id,
        Timesheet.billing_status == BillingStatus.UNBILLED,
        Timesheet.deleted.is_(False),
    )
    if scope.date_from:
        stmt = stmt.where(Timesheet.log_date >= scope.date_from)
    if scope.date_to:
        stmt = stmt.where(Timesheet.log_date <= scope.date_to)
    task_ids = _scoped_tasks(session, project, scope)
    if task_ids is not None:
        stmt = stmt.where(Timesheet.task_id.in_(task_ids))
    if lock:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt.order_by(Timesheet.id)))


def _scoped_tasks(session: Session, project: Project, scope: Scope) -> set[int] | None:
    """The tasks a scope names (directly, by task list, or by milestone); None = all time."""
    if not (scope.milestone_ids or scope.tasklist_ids or scope.task_ids):
        return None
    milestones = _source_ids(session, Milestone, scope.milestone_ids, project)
    lists = _source_ids(session, Tasklist, scope.tasklist_ids, project)
    if milestones:  # a milestone also covers the tasks of its task lists
        lists |= set(
            session.scalars(
                select(Tasklist.source_id).where(
                    Tasklist.project_id == project.id,
                    Tasklist.milestone_source_id.in_(milestones),
                )
            )
        )
    tasks = set(scope.task_ids)
    tasks |= set(
        session.scalars(
            select(Task.id).where(
                Task.project_id == project.id,
                or_(Task.milestone_source_id.in_(milestones), Task.tasklist_source_id.in_(lists)),
            )
        )
    )
    return tasks


def _source_ids(session: Session, model: Any, ids: Sequence[int], project: Project) -> set[str]:
    if not ids:
        return set()
    return set(
        session.scalars(
            select(model.source_id).where(model.id.in_(ids), model.project_id == project.id)
        )
    )


def next_number(session: Session, model: Any, organization_id: str, prefix: str) -> str:
    """The organization's next document number (``INV-000001``, ``QT-000001``)."""
    issued = session.scalar(
        select(func.count()).select_from(model).where(model.organization_id == organization_id)
    )
    return f"{prefix}-{(issued or 0) + 1:06d}"


def _scope_json(scope: Scope) -> dict[str, Any]:
    return {
        "milestone_ids": list(scope.milestone_ids),
        "tasklist_ids": list(scope.tasklist_ids),
        "task_ids": list(scope.task_ids),
        "from": scope.date_from.isoformat() if scope.date_from else None,
        "to": scope.date_to.isoformat() if scope.date_to else None,
    }
