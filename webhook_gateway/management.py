"""Integrations API: connect a portal (admin), read integrations, rotate the secret."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, jsonify, request

from schemas.api import IntegrationCreate, IntegrationCreated
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, query_int
from webhook_gateway.invoicing import parse_body
from webhook_gateway.services import services
from worker.db import Integration, SyncError
from worker.errors import Conflict, NotFound
from worker.integrations import (
    CredentialKeyError,
    connect,
    credential_names,
    get_integration,
    organization_integrations,
    rotate_secret,
    status,
)
from worker.sync import page_errors

__all__ = ["blueprint", "find_integration", "public_integration"]

blueprint = Blueprint("management", __name__, url_prefix="/api/v1")


def public_integration(integration: Integration) -> dict[str, Any]:
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
        "source": _public_source(integration.source),
        "webhook_url": f"/webhooks/{integration.id}",
        "created_at": integration.created_at.isoformat(),
    }


def _public_source(source: dict[str, Any] | None) -> dict[str, Any] | None:
    """The pull source without its credentials: their names only (the values are
    stored encrypted and only the pull decrypts them)."""
    if not source:
        return None
    return {
        "base_url": source.get("base_url"),
        "dc": source.get("dc") or "com",
        "credentials": credential_names(source),
    }


@blueprint.post("/integrations")
@require("admin")
def create() -> tuple[Response, int]:
    body = parse_body(IntegrationCreate)
    try:
        with services().write() as session:
            created = connect(
                session, principal().organization_id, body, settings=services().settings
            )
            answer = IntegrationCreated(
                id=created.integration.id,
                status=created.integration.status,
                webhook_secret=created.webhook_secret,
                webhook_token=created.webhook_token,
            )
    except Conflict as exc:
        raise ApiError(409, "portal_already_connected", str(exc)) from exc
    except CredentialKeyError as exc:  # the server's configuration, not the request
        raise ApiError(500, "credential_key_unusable", str(exc)) from exc
    return jsonify(answer.model_dump(exclude_none=True)), 201


@blueprint.get("/integrations")
@require("viewer")
def list_integrations() -> Response:
    with services().read() as session:
        rows = organization_integrations(session, principal().organization_id)
        return jsonify({"items": [public_integration(i) for i in rows], "next_cursor": None})


@blueprint.get("/status")
@require("viewer")
def organization_status() -> Response:
    """Every integration of the organization in one answer, for dashboards."""
    with services().read() as session:
        rows = organization_integrations(session, principal().organization_id)
        items = [{"id": i.id, "portal_id": i.portal_id, **status(session, i).view()} for i in rows]
    return jsonify({"integrations": items, **services().queue_depths()})


@blueprint.get("/integrations/<integration_id>")
@require("viewer")
def show(integration_id: str) -> Response:
    with services().read() as session:
        return jsonify(public_integration(find_integration(session, integration_id)))


@blueprint.post("/integrations/<integration_id>/secrets/rotate")
@require("admin")
def rotate(integration_id: str) -> tuple[Response, int]:
    """A new signing secret; the old ones stay valid for the configured overlap."""
    overlap = timedelta(hours=services().settings.secret_rotation_overlap_hours)
    with services().write() as session:
        integration = find_integration(session, integration_id)
        try:
            secret, expires = rotate_secret(session, integration, overlap, services().settings)
        except Conflict as exc:
            raise ApiError(409, "token_verification", str(exc)) from exc
    return jsonify(
        {"webhook_secret": secret, "previous_secrets_expire_at": expires.isoformat()}
    ), 201


ERROR_FIELDS = (
    "module",
    "source_id",
    "reason",
    "message",
    "resolution",
    "count",
    "first_seen",
    "last_seen",
    "resolved",
)


@blueprint.get("/integrations/<integration_id>/errors")
@require("viewer")
def errors(integration_id: str) -> Response:
    """The error summary as every list: ``items`` in id order, ``next_cursor``, ``limit``;
    filters module, reason, status=open|resolved|all; ``by_module`` counts all that match."""
    status = request.args.get("status", "open")
    if status not in ("open", "resolved", "all"):
        raise ApiError(422, "invalid_query", "status must be open, resolved or all")
    limit = query_int("limit", 50, low=1, high=500)
    after = query_int("cursor", 0)
    with services().read() as session:
        find_integration(session, integration_id)
        page = page_errors(
            session,
            integration_id,
            module=request.args.get("module"),
            reason=request.args.get("reason"),
            resolved=None if status == "all" else status == "resolved",
            limit=limit,
            after_id=after,
        )
        items = [_error_entry(row) for row in page.rows]
    return jsonify(
        {
            "items": items,
            "next_cursor": None if page.next_after_id is None else str(page.next_after_id),
            "by_module": page.by_module,
        }
    )


def _error_entry(row: SyncError) -> dict[str, Any]:
    entry = {"id": row.id, **{name: _json(getattr(row, name)) for name in ERROR_FIELDS}}
    entry["payload"] = row.last_payload
    if row.details:
        entry["details"] = row.details
    return entry


def _json(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def find_integration(session: Any, integration_id: str) -> Integration:
    """The caller's organization's integration, or 404."""
    try:
        return get_integration(session, principal().organization_id, integration_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
