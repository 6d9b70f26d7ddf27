"""Invoicing-side records: POST customers, projects and users; GET users."""

from __future__ import annotations

from typing import TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from schemas.api import CustomerCreate, InvoiceUserCreate, ProjectCreate
from schemas.responses import CustomerRecord, Page, ProjectRecord, UserView
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, invalid_body, refuse_nul_in
from webhook_gateway.openapi import documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.accounts import (
    RESOURCES,
    ProjectCreationRestricted,
    create_customer,
    create_invoice_user,
    create_project,
    serialize,
)
from worker.db import InvoiceUser
from worker.errors import Conflict, NotFound

__all__ = ["blueprint", "parse_body"]

blueprint = Blueprint("invoicing", __name__, url_prefix="/api/v1")

B = TypeVar("B", bound=BaseModel)


def parse_body(model: type[B]) -> B:
    """The request body validated as ``model``; 400 or 422 with field paths otherwise
    (a NUL character in any text included: no column can store one)."""
    try:
        body = model.model_validate_json(request.get_data(cache=True) or b"{}")
    except ValidationError as exc:
        raise invalid_body(exc, "request") from exc
    refuse_nul_in(body)
    return body


@blueprint.post("/customers")
@require("admin")
@documented({201: CustomerRecord}, body=CustomerCreate)
def post_customer() -> tuple[Response, int]:
    """Make a customer on the invoicing side."""
    body = parse_body(CustomerCreate)
    with services().write() as session:
        customer = create_customer(session, principal().organization_id, body)
        return respond(serialize(RESOURCES["customers"], customer), 201)


@blueprint.post("/projects")
@require("admin")
@documented({201: ProjectRecord}, body=ProjectCreate, errors=(403,))
def post_project() -> tuple[Response, int]:
    """Make a project on the invoicing side.

    403 project_creation_restricted where the connected portal's settings keep
    projects to the portal; 422 unknown_customer for a customer of no record."""
    body = parse_body(ProjectCreate)
    try:
        with services().write() as session:
            project = create_project(session, principal().organization_id, body)
            return respond(serialize(RESOURCES["projects"], project), 201)
    except ProjectCreationRestricted as exc:
        raise ApiError(403, "project_creation_restricted", str(exc)) from exc
    except NotFound as exc:
        raise ApiError(422, "unknown_customer", str(exc)) from exc


@blueprint.get("/users")
@require("viewer")
@documented({200: Page[UserView]})
def list_users() -> tuple[Response, int]:
    """The users of the invoicing organization."""
    with services().read() as session:
        users = session.scalars(
            select(InvoiceUser)
            .where(InvoiceUser.organization_id == principal().organization_id)
            .order_by(InvoiceUser.id)
        )
        return respond(Page[UserView](items=[UserView.model_validate(u) for u in users]))


@blueprint.post("/users")
@require("admin")
@documented({201: UserView}, body=InvoiceUserCreate, errors=(409,))
def post_user() -> tuple[Response, int]:
    """Add a user to the invoicing organization (409 for an email already there)."""
    body = parse_body(InvoiceUserCreate)
    try:
        with services().write() as session:
            user = create_invoice_user(session, principal().organization_id, body)
            return respond(UserView.model_validate(user), 201)
    except Conflict as exc:
        raise ApiError(409, "user_exists", str(exc)) from exc
