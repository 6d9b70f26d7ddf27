"""Billing synced time: invoices for a project (or chosen milestones, task lists, tasks),
exact un-invoicing on void, and the unbilled summary.

Billing methods (the project's ``billing_type``, set on the invoicing side or else
from the portal, else project hours): fixed cost for the project (the fixed amount,
no hours), project hours (the project's rate), task hours (each task's rate), staff
hours (each staff user's rate). Amounts are ``Decimal`` in the
customer's currency, rounded half-up to its minor unit (babel's currency data)
at line level. Creating an invoice locks the organization's row, so concurrent
requests are serialized and never bill a timesheet twice; each line records the
timesheets it consumed, so a void releases exactly those.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, get_args

from babel.numbers import get_currency_precision
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from schemas import QueueMessage, event_adapter
from schemas.api import Grouping
from schemas.numbers import hours_text, money_text, rate_text
from worker.accounts import owned
from worker.db import (
    Bug,
    Customer,
    Expense,
    Invoice,
    InvoiceLine,
    InvoiceLineTimesheet,
    Milestone,
    Organization,
    Project,
    StaffUser,
    SyncError,
    Task,
    Tasklist,
    Timesheet,
    utcnow,
)
from worker.errors import Conflict
from worker.sync import apply_batch

__all__ = [
    "billing_method",
    "GROUPINGS",
    "currency_of",
    "next_number",
    "project_of",
    "InvoiceRequest",
    "NothingToInvoice",
    "RateMissing",
    "Scope",
    "create_invoice",
    "invoice_view",
    "known_currency",
    "round_money",
    "unbilled_summary",
    "void_invoice",
]

FIXED_COST = "fixed_cost_for_project"
PROJECT_HOURS = "based_on_project_hours"
TASK_HOURS = "based_on_task_hours"
STAFF_HOURS = "based_on_staff_hours"
GROUPINGS: tuple[str, ...] = get_args(Grouping)
UNBILLED, INVOICED = "unbilled", "invoiced"
SIXTY = Decimal(60)


class NothingToInvoice(Exception):
    """No unbilled time in the chosen scope (or no fixed amount for a fixed-cost project)."""


class RateMissing(Exception):
    """Time to bill has no rate under the project's billing method."""


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


def billing_method(project: Project) -> str:
    """The invoicing side's method wins over the portal's (V3 shows none at all)."""
    return project.invoice_billing_type or project.billing_type or PROJECT_HOURS


def round_money(amount: Decimal, currency_code: str) -> Decimal:
    """Half-up to the currency's minor unit (JPY 0 digits, KWD 3, most 2)."""
    exponent = Decimal(1).scaleb(-get_currency_precision(currency_code))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


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
        pricing = _Pricing.load(session, project, billing_type, timesheets)
        lines = _lines(timesheets, request.grouping, pricing, currency)
        session.execute(
            update(Timesheet)
            .where(Timesheet.id.in_([t.id for t in timesheets]))
            .values(billing_status=INVOICED)
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


def _lines(
    timesheets: Sequence[Timesheet], grouping: str, pricing: _Pricing, currency: str
) -> list[InvoiceLine]:
    key = _GROUP_KEYS[grouping]
    ordered = sorted(timesheets, key=lambda t: (key(t), t.log_date or date.min, t.id))
    lines = []
    for position, (_, members) in enumerate(itertools.groupby(ordered, key=key), start=1):
        consumed = list(members)
        rates = {pricing.rate(t) for t in consumed}
        minutes = sum(t.minutes for t in consumed)
        amount = sum((Decimal(t.minutes) * pricing.rate(t) / SIXTY for t in consumed), Decimal(0))
        line = InvoiceLine(
            position=position,
            description=pricing.describe(grouping, consumed[0]),
            hours=(Decimal(minutes) / SIXTY).quantize(Decimal("0.0001")),
            rate=rates.pop() if len(rates) == 1 else None,
            amount=round_money(amount, currency),
        )
        line.timesheets = [
            InvoiceLineTimesheet(timesheet_id=t.id, minutes=t.minutes) for t in consumed
        ]
        lines.append(line)
    return lines


_GROUP_KEYS: dict[str, Callable[[Timesheet], Any]] = {
    "single": lambda t: 0,
    "task": lambda t: (t.task_id or 0, t.bug_id or 0),
    "staff": lambda t: t.staff_id or 0,
    "task_staff": lambda t: (t.task_id or 0, t.bug_id or 0, t.staff_id or 0),
    "timesheet": lambda t: t.id,
}


def _named(kind: str, name: str | None, record_id: int) -> str:
    """``project “Website redesign” (id 7)``, or ``project 7`` when it has no name."""
    return f"{kind} “{name}” (id {record_id})" if name else f"{kind} {record_id}"


@dataclass
class _Pricing:
    """Rates and names for the timesheets of one invoice, loaded in three queries."""

    project: Project
    billing_type: str
    tasks: dict[int, Task]
    bugs: dict[int, Bug]
    staff: dict[int, StaffUser]

    @classmethod
    def load(
        cls, session: Session, project: Project, billing_type: str, timesheets: Sequence[Timesheet]
    ) -> _Pricing:
        def by_id(model: Any, ids: Iterable[int | None]) -> dict[int, Any]:
            wanted = {i for i in ids if i}
            return {r.id: r for r in session.scalars(select(model).where(model.id.in_(wanted)))}

        return cls(
            project,
            billing_type,
            by_id(Task, (t.task_id for t in timesheets)),
            by_id(Bug, (t.bug_id for t in timesheets)),
            by_id(StaffUser, (t.staff_id for t in timesheets)),
        )

    def rate(self, timesheet: Timesheet) -> Decimal:
        rate: Decimal | None
        if self.billing_type == TASK_HOURS:
            task = self.tasks.get(timesheet.task_id or 0)
            # Bug and general logs have no task: they bill at the project's rate.
            task_rate = _first(task.invoice_rate, task.rate) if task is not None else None
            rate = _first(task_rate, self.project.invoice_rate, self.project.rate)
            if rate is None:
                raise RateMissing(self._no_task_rate(task))
        elif self.billing_type == STAFF_HOURS:
            staff = self.staff.get(timesheet.staff_id or 0)
            rate = staff.rate if staff is not None else None
            if rate is None:
                raise RateMissing(self._no_staff_rate(staff))
        else:
            rate = _first(self.project.invoice_rate, self.project.rate)
            if rate is None:
                raise RateMissing(f"No rate for {self._project()}: {self._fix()}")
        return Decimal(rate)

    # RateMissing is read by people (API answers, the CLI): a sentence naming the record
    # without a rate and how to give it one.
    def _project(self) -> str:
        return _named("project", self.project.name, self.project.id)

    def _fix(self, *also: str) -> str:
        routes = " or ".join([*also, f"PATCH /api/v1/projects/{self.project.id}"])
        return f"set one with {routes} to bill this time."

    def _no_task_rate(self, task: Task | None) -> str:
        if task is None:
            return (
                f"No rate for {self._project()}, at which its time logged without a task "
                f"bills: {self._fix()}"
            )
        task_named = _named("task", task.name, task.id)
        return (
            f"No rate for {task_named} of {self._project()}, nor for the project: "
            f"{self._fix(f'PATCH /api/v1/tasks/{task.id}')}"
        )

    def _no_staff_rate(self, staff: StaffUser | None) -> str:
        if staff is None:
            return (
                f"No rate for the staff user who logged time on {self._project()}: they are "
                "not synced yet; sync the portal's users, then set their rate."
            )
        who = _named("staff user", staff.name or staff.email, staff.id)
        return (
            f"No rate for {who} on {self._project()}: set one with "
            f"PATCH /api/v1/staff/{staff.id} to bill this time."
        )

    def describe(self, grouping: str, timesheet: Timesheet) -> str:
        work = self.work(timesheet)
        staff = self.staff.get(timesheet.staff_id or 0)
        who = (staff.name or staff.email or "staff") if staff else "unknown staff"
        return {
            "single": f"{self.project.name}: time",
            "task": work,
            "staff": who,
            "task_staff": f"{work} — {who}",
            "timesheet": f"{timesheet.log_date} {work} — {who}",
        }[grouping]

    def work(self, timesheet: Timesheet) -> str:
        """What the time was spent on: the task, the bug, or the general log's title."""
        if timesheet.task_id in self.tasks:
            return self.tasks[timesheet.task_id or 0].name or "task"
        if timesheet.bug_id in self.bugs:
            return self.bugs[timesheet.bug_id or 0].title or "bug"
        return timesheet.name or "General work"


# -- voiding ----------------------------------------------------------------------------


def void_invoice(session: Session, organization_id: str, invoice_id: int) -> list[int]:
    """Void the invoice; exactly the timesheets it consumed become unbilled again (its
    expenses billable again), and source edits refused while they were locked
    (``conflict_invoiced``) are applied.

    Returns the released timesheet ids.
    """
    invoice = owned(session, Invoice, invoice_id, organization_id, "invoice", for_update=True)
    if invoice.status == "void":
        raise Conflict(f"invoice {invoice.number} is already void")
    invoice.status, invoice.voided_at = "void", utcnow()
    released = [c.timesheet_id for line in invoice.lines for c in line.timesheets]
    session.execute(
        update(Expense)
        .where(Expense.invoice_line_id.in_([line.id for line in invoice.lines]))
        .values(invoice_line_id=None)
    )
    session.execute(
        update(Timesheet)
        .where(Timesheet.id.in_(released), Timesheet.billing_status == INVOICED)
        .values(billing_status=UNBILLED)
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
            SyncError.module == "timesheets",
            SyncError.reason == "conflict_invoiced",
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


def unbilled_summary(session: Session, organization_id: str, project_id: int) -> dict[str, Any]:
    """Hours and amount not yet invoiced, in total, by task and by staff user."""
    project = project_of(session, organization_id, project_id)
    currency = currency_of(session, project)
    timesheets = _unbilled(session, project, Scope(), lock=False)
    billing_type = billing_method(project)
    pricing = _Pricing.load(session, project, billing_type, timesheets)

    def summarize(key: Callable[[Timesheet], Any], name: Callable[[Timesheet], str]) -> list[Any]:
        rows = []
        ordered = sorted(timesheets, key=lambda t: str(key(t)))
        for _, members in itertools.groupby(ordered, key=lambda t: str(key(t))):
            group = list(members)
            rows.append({"name": name(group[0]), **_totals(group, pricing, currency)})
        return rows

    return {
        "project_id": project.id,
        "currency_code": currency,
        "billing_type": billing_type,
        **_totals(timesheets, pricing, currency),
        "by_task": summarize(_GROUP_KEYS["task"], pricing.work),
        "by_staff": summarize(_GROUP_KEYS["staff"], lambda t: pricing.describe("staff", t)),
    }


def _totals(timesheets: Sequence[Timesheet], pricing: _Pricing, currency: str) -> dict[str, Any]:
    minutes = sum(t.minutes for t in timesheets)
    amount: Decimal | None
    try:
        amount = round_money(
            sum((Decimal(t.minutes) * pricing.rate(t) / SIXTY for t in timesheets), Decimal(0)),
            currency,
        )
    except RateMissing:
        amount = None  # some time has no rate yet: hours are still worth showing
    return {
        "hours": hours_text(Decimal(minutes) / SIXTY),
        "amount": None if amount is None else money_text(amount, currency),
    }


def invoice_view(invoice: Invoice) -> dict[str, Any]:
    """An invoice as the API and CLI show it (figures as ``schemas.numbers`` writes them)."""
    currency = invoice.currency_code

    return {
        "id": invoice.id,
        "number": invoice.number,
        "status": invoice.status,
        "project_id": invoice.project_id,
        "customer_id": invoice.customer_id,
        "currency_code": invoice.currency_code,
        "billing_type": invoice.billing_type,
        "grouping": invoice.grouping,
        "scope": invoice.scope,
        "issue_date": invoice.issue_date.isoformat(),
        "total": money_text(invoice.total, currency),
        "lines": [
            {
                "position": line.position,
                "description": line.description,
                "hours": hours_text(line.hours),
                "rate": None if line.rate is None else rate_text(line.rate, currency),
                "amount": money_text(line.amount, currency),
                "timesheet_ids": [c.timesheet_id for c in line.timesheets],
            }
            for line in invoice.lines
        ],
        "voided_at": invoice.voided_at.isoformat() if invoice.voided_at else None,
    }


def _first(*rates: Decimal | None) -> Decimal | None:
    """The first rate that is set: the invoicing side's, then the portal's."""
    return next((r for r in rates if r is not None), None)


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
        Timesheet.billing_status == UNBILLED,
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
