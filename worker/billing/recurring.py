"""Recurring invoices: each period's unbilled time of a project, invoiced once.

``run_due`` is what ``billsync billing run-due`` (cron) calls. A period is
recorded as a ``RecurringRun`` keyed by (recurring invoice, period start) in the
same transaction as its invoice, so running twice — or two schedulers at once —
bills a period once.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from schemas.responses import RecurringView, figures_in
from worker.billing.invoices import (
    InvoiceRequest,
    NothingToInvoice,
    Scope,
    create_invoice,
    project_of,
)
from worker.billing.pricing import RateMissing
from worker.db import RecurringInvoice, RecurringRun

__all__ = [
    "FREQUENCIES",
    "PeriodOutcome",
    "PeriodResult",
    "create_recurring",
    "recurring_view",
    "run_due",
]

FREQUENCIES = ("weekly", "monthly")


def create_recurring(
    session: Session,
    organization_id: str,
    project_id: int,
    *,
    name: str,
    frequency: str,
    start_date: date,
    end_date: date | None = None,
    grouping: str = "single",
    amount: Decimal | None = None,
) -> RecurringInvoice:
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency is one of {', '.join(FREQUENCIES)}")
    project = project_of(session, organization_id, project_id)
    recurring = RecurringInvoice(
        organization_id=organization_id,
        project_id=project.id,
        name=name,
        frequency=frequency,
        next_run=start_date,
        end_date=end_date,
        grouping=grouping,
        amount=amount,
    )
    session.add(recurring)
    session.flush()
    return recurring


class PeriodOutcome(StrEnum):
    """What a run did with one period (``RecurringRun.outcome``)."""

    INVOICED = "invoiced"
    NOTHING_TO_INVOICE = "nothing_to_invoice"
    RATE_MISSING = "rate_missing"
    ALREADY_RUN = "already_run"  # another run billed it first


@dataclass(frozen=True)
class PeriodResult:
    recurring_id: int
    period_start: date
    period_end: date
    outcome: PeriodOutcome
    invoice_id: int | None = None


def run_due(sessions: sessionmaker[Session], today: date) -> list[PeriodResult]:
    """Invoice every period that has ended by ``today`` (idempotent per period)."""
    with sessions() as session:
        due = session.scalars(
            select(RecurringInvoice.id).where(
                RecurringInvoice.active.is_(True), RecurringInvoice.next_run <= today
            )
        ).all()
    results = []
    for recurring_id in due:
        while (result := _run_one_period(sessions, recurring_id, today)) is not None:
            results.append(result)
    return results


def _run_one_period(
    sessions: sessionmaker[Session], recurring_id: int, today: date
) -> PeriodResult | None:
    start = end = today
    try:
        with sessions.begin() as session:
            recurring = session.get_one(RecurringInvoice, recurring_id, with_for_update=True)
            start = recurring.next_run
            end = _period_end(start, recurring.frequency)
            if end > today or (recurring.end_date and start > recurring.end_date):
                return None
            recurring.next_run = end + timedelta(days=1)
            outcome, invoice_id = _invoice_period(session, recurring, start, end)
            session.add(
                RecurringRun(
                    recurring_id=recurring.id,
                    period_start=start,
                    period_end=end,
                    invoice_id=invoice_id,
                    outcome=outcome,
                )
            )
            session.flush()  # a second runner of the same period fails here, and rolls back
            return PeriodResult(recurring.id, start, end, outcome, invoice_id)
    except IntegrityError:
        return PeriodResult(recurring_id, start, end, PeriodOutcome.ALREADY_RUN)


def _invoice_period(
    session: Session, recurring: RecurringInvoice, start: date, end: date
) -> tuple[PeriodOutcome, int | None]:
    request = InvoiceRequest(
        project_id=recurring.project_id,
        scope=Scope(date_from=start, date_to=end),
        grouping=recurring.grouping,
        issue_date=end,
        fixed_amount=recurring.amount,
    )
    try:
        with session.begin_nested():
            invoice = create_invoice(session, recurring.organization_id, request)
    except NothingToInvoice:
        return PeriodOutcome.NOTHING_TO_INVOICE, None
    except RateMissing:
        return PeriodOutcome.RATE_MISSING, None
    return PeriodOutcome.INVOICED, invoice.id


def _period_end(start: date, frequency: str) -> date:
    if frequency == "weekly":
        return start + timedelta(days=6)
    # Monthly: to the day before the same day next month (clamped at month ends).
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    day = min(start.day, calendar.monthrange(year, month)[1])
    return date(year, month, day) - timedelta(days=1)


def recurring_view(recurring: RecurringInvoice, currency: str | None) -> RecurringView:
    """A schedule as the API shows it; ``currency`` is its project's (for ``amount``)."""
    return RecurringView.model_validate(recurring, context=figures_in(currency))
