"""Invoicing-side records: POST customers, projects and users; GET users."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from schemas.api import CustomerCreate, InvoiceUserCreate, ProjectCreate
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, invalid_body, refuse_nul_in
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
def post_customer() -> tuple[Response, int]:
    body = parse_body(CustomerCreate)
    with services().write() as session:
        customer = create_customer(session, principal().organization_id, body)
        return jsonify(serialize(RESOURCES["customers"], customer)), 201


@blueprint.post("/projects")
@require("admin")
def post_project() -> tuple[Response, int]:
    body = parse_body(ProjectCreate)
    try:
        with services().write() as session:
            project = create_project(session, principal().organization_id, body)
            return jsonify(serialize(RESOURCES["projects"], project)), 201
    except ProjectCreationRestricted as exc:
        raise ApiError(403, "project_creation_restricted", str(exc)) from exc
    except NotFound as exc:
        raise ApiError(422, "unknown_customer", str(exc)) from exc


def _user(user: InvoiceUser) -> dict[str, Any]:
    return {"id": user.id, "name": user.name, "email": user.email}


@blueprint.get("/users")
@require("viewer")
def list_users() -> Response:
    with services().read() as session:
        users = session.scalars(
            select(InvoiceUser)
            .where(InvoiceUser.organization_id == principal().organization_id)
            .order_by(InvoiceUser.id)
        )
        return jsonify({"items": [_user(u) for u in users], "next_cursor": None})


@blueprint.post("/users")
@require("admin")
def post_user() -> tuple[Response, int]:
    body = parse_body(InvoiceUserCreate)
    try:
        with services().write() as session:
            return jsonify(
                _user(create_invoice_user(session, principal().organization_id, body))
            ), 201
    except Conflict as exc:
        raise ApiError(409, "user_exists", str(exc)) from exc
