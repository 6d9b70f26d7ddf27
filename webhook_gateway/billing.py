"""Billing API: invoices from a project's unbilled time, void, unbilled summary."""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import select

from schemas.api import InvoiceCreate
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import answering, query_int
from webhook_gateway.invoicing import parse_body
from webhook_gateway.services import services
from worker.accounts import owned
from worker.billing import (
    InvoiceRequest,
    NothingToInvoice,
    RateMissing,
    Scope,
    create_invoice,
    invoice_view,
    unbilled_summary,
    void_invoice,
)
from worker.db import Invoice
from worker.errors import Conflict, NotFound

__all__ = ["blueprint", "refusals"]

blueprint = Blueprint("billing", __name__, url_prefix="/api/v1")


@blueprint.post("/projects/<int:project_id>/invoices")
@require("admin")
def post_invoice(project_id: int) -> tuple[Response, int]:
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
        return jsonify(invoice_view(invoice)), 201


@blueprint.get("/invoices")
@require("viewer")
def list_invoices() -> Response:
    stmt = select(Invoice).where(Invoice.organization_id == principal().organization_id)
    if "project_id" in request.args:
        stmt = stmt.where(Invoice.project_id == query_int("project_id", 0))
    with services().read() as session:
        rows = session.scalars(stmt.order_by(Invoice.id)).all()
        return jsonify({"items": [invoice_view(i) for i in rows], "next_cursor": None})


@blueprint.get("/invoices/<int:invoice_id>")
@require("viewer")
def get_invoice(invoice_id: int) -> Response:
    with services().read() as session, refusals():
        invoice = owned(session, Invoice, invoice_id, principal().organization_id, "invoice")
        return jsonify(invoice_view(invoice))


@blueprint.post("/invoices/<int:invoice_id>/void")
@require("admin")
def post_void(invoice_id: int) -> Response:
    """Void: exactly the time this invoice consumed becomes unbilled again."""
    with services().write() as session, refusals():
        released = void_invoice(session, principal().organization_id, invoice_id)
        invoice = session.get_one(Invoice, invoice_id)
        return jsonify({**invoice_view(invoice), "released_timesheet_ids": released})


@blueprint.get("/projects/<int:project_id>/unbilled")
@require("viewer")
def get_unbilled(project_id: int) -> Response:
    with services().read() as session, refusals():
        return jsonify(unbilled_summary(session, principal().organization_id, project_id))


def refusals() -> AbstractContextManager[None]:
    """Billing refusals as JSON errors."""
    return answering(
        (NotFound, 404, "not_found"),
        (NothingToInvoice, 409, "nothing_to_invoice"),
        (RateMissing, 409, "rate_missing"),
        (Conflict, 409, "conflict"),
    )
