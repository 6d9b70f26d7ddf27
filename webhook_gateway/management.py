"""Integrations API: connect a portal (admin), read integrations, rotate the secret."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError

from schemas.api import IntegrationCreate, IntegrationCreated
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, invalid_body
from webhook_gateway.services import services
from worker.db import Integration
from worker.errors import Conflict, NotFound
from worker.integrations import create_integration, get_integration, rotate_secret

__all__ = ["blueprint"]

blueprint = Blueprint("management", __name__, url_prefix="/api/v1")


def _body(model: type[IntegrationCreate]) -> IntegrationCreate:
    raw = request.get_data(cache=True)
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise invalid_body(exc, "request") from exc


def _public(integration: Integration) -> dict[str, Any]:
    return {
        "id": integration.id,
        "portal_id": integration.portal_id,
        "status": "deleted" if integration.deleted_at else integration.status,
        "modules": integration.modules,
        "invoiced_before": (
            integration.invoiced_before.isoformat() if integration.invoiced_before else None
        ),
        "customer_duplication": integration.customer_duplication,
        "restrict_project_creation": integration.restrict_project_creation,
        "field_map": integration.field_map,
        "verification": integration.verification,
        "webhook_url": f"/webhooks/{integration.id}",
        "created_at": integration.created_at.isoformat(),
    }


@blueprint.post("/integrations")
@require("admin")
def create() -> tuple[Response, int]:
    body = _body(IntegrationCreate)
    try:
        with services().write() as session:
            created = create_integration(session, principal().organization_id, body)
            answer = IntegrationCreated(
                id=created.integration.id,
                status=created.integration.status,
                webhook_secret=created.webhook_secret,
                webhook_token=created.webhook_token,
            )
    except Conflict as exc:
        raise ApiError(409, "portal_already_connected", str(exc)) from exc
    return jsonify(answer.model_dump(exclude_none=True)), 201


@blueprint.get("/integrations")
@require("viewer")
def list_integrations() -> Response:
    with services().read() as session:
        rows = (
            session.query(Integration)
            .filter(Integration.organization_id == principal().organization_id)
            .order_by(Integration.created_at)
        )
        return jsonify({"items": [_public(i) for i in rows], "next_cursor": None})


@blueprint.get("/integrations/<integration_id>")
@require("viewer")
def show(integration_id: str) -> Response:
    with services().read() as session:
        return jsonify(_public(_find(session, integration_id)))


@blueprint.post("/integrations/<integration_id>/secrets/rotate")
@require("admin")
def rotate(integration_id: str) -> tuple[Response, int]:
    """A new signing secret; the old ones stay valid for the configured overlap."""
    overlap = timedelta(hours=services().settings.secret_rotation_overlap_hours)
    with services().write() as session:
        integration = _find(session, integration_id)
        try:
            secret, expires = rotate_secret(session, integration, overlap)
        except Conflict as exc:
            raise ApiError(409, "token_verification", str(exc)) from exc
    return jsonify(
        {"webhook_secret": secret, "previous_secrets_expire_at": expires.isoformat()}
    ), 201


def _find(session: Any, integration_id: str) -> Integration:
    try:
        return get_integration(session, principal().organization_id, integration_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
