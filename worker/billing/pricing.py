"""Pricing billed time: the billing method's rate for each timesheet, the grouping of
timesheets into invoice lines, and the amounts, rounded half-up to the currency's minor
unit (babel's currency data) at line level.

Billing methods (the project's ``billing_type``, set on the invoicing side or else
from the portal, else project hours): fixed cost for the project (the fixed amount,
no hours), project hours (the project's rate), task hours (each task's rate), staff
hours (each staff user's rate). The invoicing side's rates win over the portal's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, get_args

from babel.numbers import get_currency_precision
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.api import Grouping
from schemas.responses import Figure
from worker.db import Bug, InvoiceLine, InvoiceLineTimesheet, Project, StaffUser, Task, Timesheet
from worker.errors import Conflict

__all__ = [
    "FIXED_COST",
    "GROUPINGS",
    "GROUP_KEYS",
    "PROJECT_HOURS",
    "SIXTY",
    "STAFF_HOURS",
    "TASK_HOURS",
    "Pricing",
    "RateHolder",
    "RateMissing",
    "billing_method",
    "priced_lines",
    "priced_totals",
    "round_money",
]

FIXED_COST = "fixed_cost_for_project"
PROJECT_HOURS = "based_on_project_hours"
TASK_HOURS = "based_on_task_hours"
STAFF_HOURS = "based_on_staff_hours"
GROUPINGS: tuple[str, ...] = get_args(Grouping)
SIXTY = Decimal(60)


RateHolder = Literal["project", "task", "staff"]
_HOLDER_NAMES: dict[RateHolder, str] = {"project": "project", "task": "task", "staff": "staff user"}


class RateMissing(Conflict):
    """Time to bill has no rate under the project's billing method.

    ``missing`` is the sentence naming what has no rate; ``holders`` are the records
    (kind, id) a rate may be set on, the narrowest first, or none when the record is
    not there to take one. How to set it is the caller's to say: ``str()`` says it in
    the domain's words.
    """

    def __init__(self, missing: str, holders: tuple[tuple[RateHolder, int], ...] = ()) -> None:
        self.missing = missing
        self.holders = holders
        if holders:
            where = " or ".join(f"{_HOLDER_NAMES[kind]} {i}" for kind, i in holders)
            super().__init__(f"{missing}: set one for {where} to bill this time.")
        else:
            super().__init__(missing)


def billing_method(project: Project) -> str:
    """The invoicing side's method wins over the portal's (V3 shows none at all)."""
    return project.invoice_billing_type or project.billing_type or PROJECT_HOURS


def round_money(amount: Decimal, currency_code: str) -> Decimal:
    """Half-up to the currency's minor unit (JPY 0 digits, KWD 3, most 2)."""
    exponent = Decimal(1).scaleb(-get_currency_precision(currency_code))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def priced_lines(
    timesheets: Sequence[Timesheet], grouping: str, pricing: Pricing, currency: str
) -> list[InvoiceLine]:
    key = GROUP_KEYS[grouping]
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


GROUP_KEYS: dict[str, Callable[[Timesheet], Any]] = {
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
class Pricing:
    """Rates and names for the timesheets of one invoice, loaded in three queries."""

    project: Project
    billing_type: str
    tasks: dict[int, Task]
    bugs: dict[int, Bug]
    staff: dict[int, StaffUser]

    @classmethod
    def load(
        cls, session: Session, project: Project, billing_type: str, timesheets: Sequence[Timesheet]
    ) -> Pricing:
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
                raise self._no_task_rate(task)
        elif self.billing_type == STAFF_HOURS:
            staff = self.staff.get(timesheet.staff_id or 0)
            rate = staff.rate if staff is not None else None
            if rate is None:
                raise self._no_staff_rate(staff)
        else:
            rate = _first(self.project.invoice_rate, self.project.rate)
            if rate is None:
                raise RateMissing(f"No rate for {self._project()}", self._on_project())
        return Decimal(rate)

    # RateMissing is read by people (API answers, the CLI): a sentence naming the record
    # without a rate, and where one may be set.
    def _project(self) -> str:
        return _named("project", self.project.name, self.project.id)

    def _on_project(self) -> tuple[tuple[RateHolder, int], ...]:
        return (("project", self.project.id),)

    def _no_task_rate(self, task: Task | None) -> RateMissing:
        if task is None:
            return RateMissing(
                f"No rate for {self._project()}, at which its time logged without a task bills",
                self._on_project(),
            )
        task_named = _named("task", task.name, task.id)
        return RateMissing(
            f"No rate for {task_named} of {self._project()}, nor for the project",
            (("task", task.id), *self._on_project()),
        )

    def _no_staff_rate(self, staff: StaffUser | None) -> RateMissing:
        if staff is None:
            return RateMissing(
                f"No rate for the staff user who logged time on {self._project()}: they are "
                "not synced yet; sync the portal's users, then set their rate."
            )
        who = _named("staff user", staff.name or staff.email, staff.id)
        return RateMissing(f"No rate for {who} on {self._project()}", (("staff", staff.id),))

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


def priced_totals(
    timesheets: Sequence[Timesheet], pricing: Pricing, currency: str
) -> tuple[Decimal, Figure | None]:
    """The hours of ``timesheets`` and what they bill (None while some time has no rate:
    the hours are still worth showing)."""
    minutes = sum(t.minutes for t in timesheets)
    try:
        amount = round_money(
            sum((Decimal(t.minutes) * pricing.rate(t) / SIXTY for t in timesheets), Decimal(0)),
            currency,
        )
    except RateMissing:
        return Decimal(minutes) / SIXTY, None
    return Decimal(minutes) / SIXTY, Figure(amount, currency)


def _first(*rates: Decimal | None) -> Decimal | None:
    """The first rate that is set: the invoicing side's, then the portal's."""
    return next((r for r in rates if r is not None), None)
