"""Billing API: invoices from a project's unbilled time, void, unbilled summary."""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import Blueprint, Response, request
from sqlalchemy import select

from schemas.api import InvoiceCreate
from schemas.payloads import BIGINT_MAX
from schemas.responses import InvoiceView, InvoiceVoided, Page, UnbilledSummary
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import answering, query_int
from webhook_gateway.invoicing import parse_body
from webhook_gateway.openapi import Param, documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.accounts import owned
from worker.billing import (
    InvoiceRequest,
    NothingToInvoice,
    RateHolder,
    RateMissing,
    Scope,
    create_invoice,
    invoice_view,
    unbilled_summary,
    void_invoice,
)
from worker.db import Invoice
from worker.errors import Conflict, NotFound

__all__ = ["blueprint", "rate_missing_message", "refusals"]

blueprint = Blueprint("billing", __name__, url_prefix="/api/v1")


@blueprint.post("/projects/<int:project_id>/invoices")
@require("admin")
@documented({201: InvoiceView}, body=InvoiceCreate, errors=(404, 409))
def post_invoice(project_id: int) -> tuple[Response, int]:
    """Invoice a project's unbilled time (or its fixed amount).

    The whole project unless the scope names milestones, task lists or tasks, or a date
    range; billable expenses not billed yet go on it too. 409 nothing_to_invoice,
    rate_missing (the message says where to set one) or conflict (no currency)."""
    body = parse_body(InvoiceCreate)
    scope = body.scope
    billing = InvoiceRequest(
        project_id=project_id,
        scope=Scope(
            milestone_ids=tuple(scope.milestone_ids),
            tasklist_ids=tuple(scope.tasklist_ids),
            task_ids=tuple(scope.task_ids),
            date_from=scope.date_from,
            date_to=scope.date_to,
        ),
        grouping=body.group_by,
        issue_date=body.issue_date,
        fixed_amount=body.amount,
    )
    with services().write() as session, refusals():
        invoice = create_invoice(session, principal().organization_id, billing)
        return respond(invoice_view(invoice), 201)


@blueprint.get("/invoices")
@require("viewer")
@documented(
    {200: Page[InvoiceView]},
    query=[Param("project_id", {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX})],
)
def list_invoices() -> tuple[Response, int]:
    """The organization's invoices, oldest first."""
    stmt = select(Invoice).where(Invoice.organization_id == principal().organization_id)
    if "project_id" in request.args:
        stmt = stmt.where(Invoice.project_id == query_int("project_id", 0))
    with services().read() as session:
        rows = session.scalars(stmt.order_by(Invoice.id)).all()
        return respond(Page[InvoiceView](items=[invoice_view(i) for i in rows]))


@blueprint.get("/invoices/<int:invoice_id>")
@require("viewer")
@documented({200: InvoiceView}, errors=(404,))
def get_invoice(invoice_id: int) -> tuple[Response, int]:
    """One invoice with its lines."""
    with services().read() as session, refusals():
        invoice = owned(session, Invoice, invoice_id, principal().organization_id, "invoice")
        return respond(invoice_view(invoice))


@blueprint.post("/invoices/<int:invoice_id>/void")
@require("admin")
@documented({200: InvoiceVoided}, errors=(404, 409))
def post_void(invoice_id: int) -> tuple[Response, int]:
    """Void an invoice: exactly the time it consumed becomes unbilled again.

    409 if it is void already."""
    with services().write() as session, refusals():
        released = void_invoice(session, principal().organization_id, invoice_id)
        voided = invoice_view(session.get_one(Invoice, invoice_id))
        return respond(InvoiceVoided(**dict(voided), released_timesheet_ids=released))


@blueprint.get("/projects/<int:project_id>/unbilled")
@require("viewer")
@documented({200: UnbilledSummary}, errors=(404, 409))
def get_unbilled(project_id: int) -> tuple[Response, int]:
    """A project's time not invoiced yet: hours and amount, by task and by staff user.

    The amounts are null while some of the time has no rate; 409 for a project
    without a currency."""
    with services().read() as session, refusals():
        return respond(unbilled_summary(session, principal().organization_id, project_id))


def refusals() -> AbstractContextManager[None]:
    """Billing refusals as JSON errors."""
    return answering(
        (NotFound, 404, "not_found"),
        (NothingToInvoice, 409, "nothing_to_invoice"),
        (RateMissing, 409, "rate_missing", rate_missing_message),
        (Conflict, 409, "conflict"),
    )


# Where the API sets the rate of each record a rate may be set on.
RATE_ROUTES: dict[RateHolder, str] = {"project": "projects", "task": "tasks", "staff": "staff"}


def rate_missing_message(exc: RateMissing) -> str:
    """What has no rate, and the API calls that would give it one."""
    if not exc.holders:
        return str(exc)
    routes = " or ".join(f"PATCH /api/v1/{RATE_ROUTES[kind]}/{i}" for kind, i in exc.holders)
    return f"{exc.missing}: set one with {routes} to bill this time."
