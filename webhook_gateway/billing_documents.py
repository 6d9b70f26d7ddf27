"""Expenses, quotes and recurring invoices of a project; invoicing-side rates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Blueprint, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.api import (
    ExpenseCreate,
    ExpenseUpdate,
    ProjectBillingSet,
    QuoteCreate,
    QuoteUpdate,
    RateSet,
    RecurringCreate,
    RecurringUpdate,
)
from schemas.responses import (
    ExpenseView,
    Figure,
    Page,
    ProjectBillingView,
    QuoteView,
    RateView,
    RecurringView,
)
from webhook_gateway.auth import principal, require
from webhook_gateway.billing import refusals
from webhook_gateway.invoicing import parse_body
from webhook_gateway.openapi import documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.accounts import owned
from worker.billing import (
    create_expense,
    create_quote,
    create_recurring,
    delete_expense,
    expense_currency,
    expense_view,
    get_quote,
    known_currency,
    list_expenses,
    project_of,
    quote_view,
    recurring_view,
    update_expense,
    update_quote,
)
from worker.db import Project, Quote, RecurringInvoice, StaffUser, Task, utcnow

__all__ = ["blueprint"]

blueprint = Blueprint("billing_documents", __name__, url_prefix="/api/v1")


# -- rates ------------------------------------------------------------------------------


@blueprint.patch("/projects/<int:project_id>")
@require("admin")
@documented({200: ProjectBillingView}, body=ProjectBillingSet, errors=(404,))
def patch_project_billing(project_id: int) -> tuple[Response, int]:
    """Set a project's rate and billing method on the invoicing side.

    Zoho's V3 API shows neither; what the body leaves out stays as it is, and null
    falls back to the portal's."""
    body = parse_body(ProjectBillingSet)
    with services().write() as session, refusals():
        project = owned(session, Project, project_id, principal().organization_id, "project")
        if "rate" in body.model_fields_set:
            project.invoice_rate = body.rate
        if "billing_type" in body.model_fields_set:
            project.invoice_billing_type = body.billing_type
        return respond(
            ProjectBillingView(
                id=project.id,
                rate=_rate(project.invoice_rate, known_currency(session, project)),
                billing_type=project.invoice_billing_type,
            )
        )


@blueprint.patch("/tasks/<int:task_id>")
@require("admin")
@documented({200: RateView}, body=RateSet, errors=(404,))
def patch_task_rate(task_id: int) -> tuple[Response, int]:
    """Set a task's hourly rate, in its project's currency."""
    body = parse_body(RateSet)
    with services().write() as session, refusals():
        task = owned(session, Task, task_id, principal().organization_id, "task")
        task.invoice_rate = body.rate
        project = session.get_one(Project, task.project_id)
        rate = _rate(body.rate, known_currency(session, project))
        return respond(RateView(id=task.id, rate=rate))


@blueprint.patch("/staff/<int:staff_id>")
@require("admin")
@documented({200: RateView}, body=RateSet, errors=(404,))
def patch_staff_rate(staff_id: int) -> tuple[Response, int]:
    """Set a staff user's hourly rate, for staff-hours billing.

    The portal has none. It applies to projects of any currency, so it is shown in
    the default minor units."""
    body = parse_body(RateSet)
    with services().write() as session, refusals():
        staff = owned(session, StaffUser, staff_id, principal().organization_id, "staff user")
        staff.rate = body.rate
        return respond(RateView(id=staff.id, rate=_rate(body.rate, None)))


# -- expenses ---------------------------------------------------------------------------


@blueprint.post("/projects/<int:project_id>/expenses")
@require("admin")
@documented({201: ExpenseView}, body=ExpenseCreate, errors=(404,))
def post_expense(project_id: int) -> tuple[Response, int]:
    """Add an expense to a project; a billable one goes on its next invoice."""
    body = parse_body(ExpenseCreate)
    with services().write() as session, refusals():
        expense = create_expense(
            session, principal().organization_id, project_id, **body.model_dump()
        )
        return respond(expense_view(expense, expense_currency(session, expense)), 201)


@blueprint.get("/projects/<int:project_id>/expenses")
@require("viewer")
@documented({200: Page[ExpenseView]}, errors=(404,))
def get_expenses(project_id: int) -> tuple[Response, int]:
    """A project's expenses."""
    with services().read() as session, refusals():
        organization_id = principal().organization_id
        rows = list_expenses(session, organization_id, project_id)
        currency = known_currency(session, project_of(session, organization_id, project_id))
        return respond(Page[ExpenseView](items=[expense_view(e, currency) for e in rows]))


@blueprint.patch("/expenses/<int:expense_id>")
@require("admin")
@documented({200: ExpenseView}, body=ExpenseUpdate, errors=(404, 409))
def patch_expense(expense_id: int) -> tuple[Response, int]:
    """Change an expense (409 once it is invoiced: void the invoice first)."""
    changes = parse_body(ExpenseUpdate).model_dump(exclude_unset=True)
    with services().write() as session, refusals():
        expense = update_expense(session, principal().organization_id, expense_id, changes)
        return respond(expense_view(expense, expense_currency(session, expense)))


@blueprint.delete("/expenses/<int:expense_id>")
@require("admin")
@documented({204: None}, errors=(404, 409))
def remove_expense(expense_id: int) -> tuple[str, int]:
    """Delete an expense (409 once it is invoiced: void the invoice first)."""
    with services().write() as session, refusals():
        delete_expense(session, principal().organization_id, expense_id)
    return "", 204


# -- quotes -----------------------------------------------------------------------------


@blueprint.post("/projects/<int:project_id>/quotes")
@require("admin")
@documented({201: QuoteView}, body=QuoteCreate, errors=(404, 409))
def post_quote(project_id: int) -> tuple[Response, int]:
    """Make a quote for a project, in its customer's currency (409 without one)."""
    body = parse_body(QuoteCreate)
    with services().write() as session, refusals():
        quote = create_quote(
            session,
            principal().organization_id,
            project_id,
            [line.model_dump() for line in body.lines],
            issue_date=body.issue_date or _today(),
            expiry_date=body.expiry_date,
        )
        return respond(quote_view(quote), 201)


@blueprint.get("/projects/<int:project_id>/quotes")
@require("viewer")
@documented({200: Page[QuoteView]}, errors=(404,))
def list_quotes(project_id: int) -> tuple[Response, int]:
    """A project's quotes."""
    with services().read() as session, refusals():
        project = project_of(session, principal().organization_id, project_id)
        rows = session.scalars(
            select(Quote).where(Quote.project_id == project.id).order_by(Quote.id)
        )
        return respond(Page[QuoteView](items=[quote_view(q) for q in rows]))


@blueprint.get("/quotes/<int:quote_id>")
@require("viewer")
@documented({200: QuoteView}, errors=(404,))
def get_one_quote(quote_id: int) -> tuple[Response, int]:
    """One quote with its lines."""
    with services().read() as session, refusals():
        return respond(quote_view(get_quote(session, principal().organization_id, quote_id)))


@blueprint.patch("/quotes/<int:quote_id>")
@require("admin")
@documented({200: QuoteView}, body=QuoteUpdate, errors=(404,))
def patch_quote(quote_id: int) -> tuple[Response, int]:
    """Change a quote's lines, status or expiry date."""
    changes = parse_body(QuoteUpdate).model_dump(exclude_unset=True)
    with services().write() as session, refusals():
        quote = get_quote(session, principal().organization_id, quote_id)
        return respond(quote_view(update_quote(session, quote, changes)))


@blueprint.delete("/quotes/<int:quote_id>")
@require("admin")
@documented({204: None}, errors=(404,))
def delete_quote(quote_id: int) -> tuple[str, int]:
    """Delete a quote."""
    with services().write() as session, refusals():
        session.delete(get_quote(session, principal().organization_id, quote_id))
    return "", 204


# -- recurring invoices -----------------------------------------------------------------


@blueprint.post("/projects/<int:project_id>/recurring-invoices")
@require("admin")
@documented({201: RecurringView}, body=RecurringCreate, errors=(404,))
def post_recurring(project_id: int) -> tuple[Response, int]:
    """Schedule a project's invoices: each week's or month's unbilled time, once.

    ``billsync billing run-due`` (cron) invoices the periods that have ended."""
    body = parse_body(RecurringCreate)
    with services().write() as session, refusals():
        recurring = create_recurring(
            session,
            principal().organization_id,
            project_id,
            name=body.name,
            frequency=body.frequency,
            start_date=body.start_date,
            end_date=body.end_date,
            grouping=body.group_by,
            amount=body.amount,
        )
        return respond(_recurring_view(session, recurring), 201)


@blueprint.get("/projects/<int:project_id>/recurring-invoices")
@require("viewer")
@documented({200: Page[RecurringView]}, errors=(404,))
def list_recurring(project_id: int) -> tuple[Response, int]:
    """A project's invoice schedules."""
    with services().read() as session, refusals():
        project = project_of(session, principal().organization_id, project_id)
        rows = session.scalars(
            select(RecurringInvoice)
            .where(RecurringInvoice.project_id == project.id)
            .order_by(RecurringInvoice.id)
        )
        currency = known_currency(session, project)
        return respond(Page[RecurringView](items=[recurring_view(r, currency) for r in rows]))


@blueprint.patch("/recurring-invoices/<int:recurring_id>")
@require("admin")
@documented({200: RecurringView}, body=RecurringUpdate, errors=(404,))
def patch_recurring(recurring_id: int) -> tuple[Response, int]:
    """Change a schedule (its past periods stay as they were invoiced)."""
    changes = parse_body(RecurringUpdate).model_dump(exclude_unset=True)
    if "group_by" in changes:
        changes["grouping"] = changes.pop("group_by")
    with services().write() as session, refusals():
        recurring = _recurring(session, recurring_id)
        for name, value in changes.items():
            setattr(recurring, name, value)
        return respond(_recurring_view(session, recurring))


@blueprint.delete("/recurring-invoices/<int:recurring_id>")
@require("admin")
@documented({200: RecurringView}, errors=(404,))
def stop_recurring(recurring_id: int) -> tuple[Response, int]:
    """Stop a schedule (its invoices and past periods stay)."""
    with services().write() as session, refusals():
        recurring = _recurring(session, recurring_id)
        recurring.active = False
        return respond(_recurring_view(session, recurring))


def _recurring(session: Session, recurring_id: int) -> RecurringInvoice:
    organization_id = principal().organization_id
    return owned(session, RecurringInvoice, recurring_id, organization_id, "recurring invoice")


def _recurring_view(session: Session, recurring: RecurringInvoice) -> RecurringView:
    project = session.get_one(Project, recurring.project_id)
    return recurring_view(recurring, known_currency(session, project))


def _rate(rate: Decimal | None, currency: str | None) -> Figure | None:
    return None if rate is None else Figure(rate, currency)


def _today() -> date:
    return utcnow().date()
