"""Expenses, quotes and recurring invoices of a project; invoicing-side rates."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, jsonify
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
from schemas.numbers import rate_text
from webhook_gateway.auth import principal, require
from webhook_gateway.billing import refusals
from webhook_gateway.invoicing import parse_body
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
def patch_project_billing(project_id: int) -> Response:
    """A project's rate and billing method on the invoicing side (Zoho's V3 API shows
    neither); what the body leaves out stays as it is."""
    body = parse_body(ProjectBillingSet)
    with services().write() as session, refusals():
        project = owned(session, Project, project_id, principal().organization_id, "project")
        if "rate" in body.model_fields_set:
            project.invoice_rate = body.rate
        if "billing_type" in body.model_fields_set:
            project.invoice_billing_type = body.billing_type
        return jsonify(
            {
                "id": project.id,
                "rate": _rate(project.invoice_rate, known_currency(session, project)),
                "billing_type": project.invoice_billing_type,
            }
        )


@blueprint.patch("/tasks/<int:task_id>")
@require("admin")
def patch_task_rate(task_id: int) -> Response:
    """A task's hourly rate, in its project's currency."""
    body = parse_body(RateSet)
    with services().write() as session, refusals():
        task = owned(session, Task, task_id, principal().organization_id, "task")
        task.invoice_rate = body.rate
        project = session.get_one(Project, task.project_id)
        return jsonify({"id": task.id, "rate": _rate(body.rate, known_currency(session, project))})


@blueprint.patch("/staff/<int:staff_id>")
@require("admin")
def patch_staff_rate(staff_id: int) -> Response:
    """A staff user's hourly rate (the portal has none), for staff-hours billing. It
    applies to projects of any currency, so it is shown in the default minor units."""
    body = parse_body(RateSet)
    with services().write() as session, refusals():
        staff = owned(session, StaffUser, staff_id, principal().organization_id, "staff user")
        staff.rate = body.rate
        return jsonify({"id": staff.id, "rate": _rate(body.rate, None)})


# -- expenses ---------------------------------------------------------------------------


@blueprint.post("/projects/<int:project_id>/expenses")
@require("admin")
def post_expense(project_id: int) -> tuple[Response, int]:
    body = parse_body(ExpenseCreate)
    with services().write() as session, refusals():
        expense = create_expense(
            session, principal().organization_id, project_id, **body.model_dump()
        )
        return jsonify(expense_view(expense, expense_currency(session, expense))), 201


@blueprint.get("/projects/<int:project_id>/expenses")
@require("viewer")
def get_expenses(project_id: int) -> Response:
    with services().read() as session, refusals():
        organization_id = principal().organization_id
        rows = list_expenses(session, organization_id, project_id)
        currency = known_currency(session, project_of(session, organization_id, project_id))
        return jsonify({"items": [expense_view(e, currency) for e in rows], "next_cursor": None})


@blueprint.patch("/expenses/<int:expense_id>")
@require("admin")
def patch_expense(expense_id: int) -> Response:
    changes = parse_body(ExpenseUpdate).model_dump(exclude_unset=True)
    with services().write() as session, refusals():
        expense = update_expense(session, principal().organization_id, expense_id, changes)
        return jsonify(expense_view(expense, expense_currency(session, expense)))


@blueprint.delete("/expenses/<int:expense_id>")
@require("admin")
def remove_expense(expense_id: int) -> tuple[str, int]:
    with services().write() as session, refusals():
        delete_expense(session, principal().organization_id, expense_id)
    return "", 204


# -- quotes -----------------------------------------------------------------------------


@blueprint.post("/projects/<int:project_id>/quotes")
@require("admin")
def post_quote(project_id: int) -> tuple[Response, int]:
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
        return jsonify(quote_view(quote)), 201


@blueprint.get("/projects/<int:project_id>/quotes")
@require("viewer")
def list_quotes(project_id: int) -> Response:
    with services().read() as session, refusals():
        project = project_of(session, principal().organization_id, project_id)
        rows = session.scalars(
            select(Quote).where(Quote.project_id == project.id).order_by(Quote.id)
        )
        return jsonify({"items": [quote_view(q) for q in rows], "next_cursor": None})


@blueprint.get("/quotes/<int:quote_id>")
@require("viewer")
def get_one_quote(quote_id: int) -> Response:
    with services().read() as session, refusals():
        return jsonify(quote_view(get_quote(session, principal().organization_id, quote_id)))


@blueprint.patch("/quotes/<int:quote_id>")
@require("admin")
def patch_quote(quote_id: int) -> Response:
    changes = parse_body(QuoteUpdate).model_dump(exclude_unset=True)
    with services().write() as session, refusals():
        quote = get_quote(session, principal().organization_id, quote_id)
        return jsonify(quote_view(update_quote(session, quote, changes)))


@blueprint.delete("/quotes/<int:quote_id>")
@require("admin")
def delete_quote(quote_id: int) -> tuple[str, int]:
    with services().write() as session, refusals():
        session.delete(get_quote(session, principal().organization_id, quote_id))
    return "", 204


# -- recurring invoices -----------------------------------------------------------------


@blueprint.post("/projects/<int:project_id>/recurring-invoices")
@require("admin")
def post_recurring(project_id: int) -> tuple[Response, int]:
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
        return jsonify(_recurring_view(session, recurring)), 201


@blueprint.get("/projects/<int:project_id>/recurring-invoices")
@require("viewer")
def list_recurring(project_id: int) -> Response:
    with services().read() as session, refusals():
        project = project_of(session, principal().organization_id, project_id)
        rows = session.scalars(
            select(RecurringInvoice)
            .where(RecurringInvoice.project_id == project.id)
            .order_by(RecurringInvoice.id)
        )
        currency = known_currency(session, project)
        return jsonify({"items": [recurring_view(r, currency) for r in rows], "next_cursor": None})


@blueprint.patch("/recurring-invoices/<int:recurring_id>")
@require("admin")
def patch_recurring(recurring_id: int) -> Response:
    changes = parse_body(RecurringUpdate).model_dump(exclude_unset=True)
    if "group_by" in changes:
        changes["grouping"] = changes.pop("group_by")
    with services().write() as session, refusals():
        recurring = _recurring(session, recurring_id)
        for name, value in changes.items():
            setattr(recurring, name, value)
        return jsonify(_recurring_view(session, recurring))


@blueprint.delete("/recurring-invoices/<int:recurring_id>")
@require("admin")
def stop_recurring(recurring_id: int) -> Response:
    """Stop a schedule (its invoices and past periods stay)."""
    with services().write() as session, refusals():
        recurring = _recurring(session, recurring_id)
        recurring.active = False
        return jsonify(_recurring_view(session, recurring))


def _recurring(session: Session, recurring_id: int) -> RecurringInvoice:
    organization_id = principal().organization_id
    return owned(session, RecurringInvoice, recurring_id, organization_id, "recurring invoice")


def _recurring_view(session: Session, recurring: RecurringInvoice) -> dict[str, Any]:
    project = session.get_one(Project, recurring.project_id)
    return recurring_view(recurring, known_currency(session, project))


def _rate(rate: Decimal | None, currency: str | None) -> str | None:
    return None if rate is None else rate_text(rate, currency)


def _today() -> date:
    return utcnow().date()
