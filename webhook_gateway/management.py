"""Integrations API: connect a portal (admin), read integrations, rotate the secret."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, request

from schemas.api import IntegrationCreate
from schemas.responses import (
    ErrorPage,
    IntegrationCreated,
    IntegrationStatusItem,
    IntegrationView,
    OrganizationStatus,
    Page,
    SecretRotated,
    SourceView,
    SyncErrorEntry,
)
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, query_int
from webhook_gateway.invoicing import parse_body
from webhook_gateway.openapi import Param, documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.db import Integration, IntegrationState, SyncError
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


def public_integration(integration: Integration) -> IntegrationView:
    return IntegrationView(
        id=integration.id,
        portal_id=integration.portal_id,
        status=IntegrationState.DELETED if integration.deleted_at else integration.status,
        modules=integration.modules,
        invoiced_before=integration.invoiced_before,
        customer_duplication=integration.customer_duplication,
        restrict_project_creation=integration.restrict_project_creation,
        field_map=integration.field_map,
        verification=integration.verification,
        source=_public_source(integration.source),
        webhook_url=f"/webhooks/{integration.id}",
        created_at=integration.created_at,
    )


def _public_source(source: dict[str, Any] | None) -> SourceView | None:
    """The pull source without its credentials: their names only (the values are
    stored encrypted and only the pull decrypts them)."""
    if not source:
        return None
    return SourceView(
        base_url=source.get("base_url"),
        dc=source.get("dc") or "com",
        credentials=credential_names(source),
    )


@blueprint.post("/integrations")
@require("admin")
@documented({201: IntegrationCreated}, body=IntegrationCreate, errors=(409, 500))
def create() -> tuple[Response, int]:
    """Connect a portal.

    The answer shows the webhook signing secret (or, in token mode, the webhook token)
    this once. With a pull source, its initial sync is requested (status
    sync_in_progress). 409 portal_already_connected; 500 credential_key_unusable when
    the server's credential key cannot encrypt the source's credentials."""
    body = parse_body(IntegrationCreate)
    try:
        with services().write() as session:
            created = connect(
                session, principal().organization_id, body, settings=services().settings
            )
            answer = IntegrationCreated(
                id=created.integration.id, status=created.integration.status
            )
            if created.webhook_secret is not None:
                answer.webhook_secret = created.webhook_secret
            if created.webhook_token is not None:
                answer.webhook_token = created.webhook_token
    except Conflict as exc:
        raise ApiError(409, "portal_already_connected", str(exc)) from exc
    except CredentialKeyError as exc:  # the server's configuration, not the request
        raise ApiError(500, "credential_key_unusable", str(exc)) from exc
    return respond(answer, 201)


@blueprint.get("/integrations")
@require("viewer")
@documented({200: Page[IntegrationView]})
def list_integrations() -> tuple[Response, int]:
    """The organization's integrations (deleted ones too)."""
    with services().read() as session:
        rows = organization_integrations(session, principal().organization_id)
        return respond(Page[IntegrationView](items=[public_integration(i) for i in rows]))


@blueprint.get("/status")
@require("viewer")
@documented({200: OrganizationStatus})
def organization_status() -> tuple[Response, int]:
    """Every integration of the organization in one answer, for dashboards."""
    with services().read() as session:
        rows = organization_integrations(session, principal().organization_id)
        items = [
            IntegrationStatusItem(id=i.id, portal_id=i.portal_id, **dict(status(session, i).view()))
            for i in rows
        ]
    return respond(OrganizationStatus(integrations=items, **services().queue_depths()))


@blueprint.get("/integrations/<integration_id>")
@require("viewer")
@documented({200: IntegrationView}, errors=(404,))
def show(integration_id: str) -> tuple[Response, int]:
    """One integration: its settings, and its pull source's credential names only."""
    with services().read() as session:
        return respond(public_integration(find_integration(session, integration_id)))


@blueprint.post("/integrations/<integration_id>/secrets/rotate")
@require("admin")
@documented({201: SecretRotated}, errors=(404, 409))
def rotate(integration_id: str) -> tuple[Response, int]:
    """A new signing secret; the old ones stay valid for the configured overlap."""
    overlap = timedelta(hours=services().settings.secret_rotation_overlap_hours)
    with services().write() as session:
        integration = find_integration(session, integration_id)
        try:
            secret, expires = rotate_secret(session, integration, overlap, services().settings)
        except Conflict as exc:
            raise ApiError(409, "token_verification", str(exc)) from exc
    return respond(SecretRotated(webhook_secret=secret, previous_secrets_expire_at=expires), 201)


@blueprint.get("/integrations/<integration_id>/errors")
@require("viewer")
@documented(
    {200: ErrorPage},
    query=[
        Param("status", {"type": "string", "enum": ["open", "resolved", "all"], "default": "open"}),
        Param("module", {"type": "string"}),
        Param("reason", {"type": "string"}),
        Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
        Param("cursor", {"type": "string", "pattern": "^[0-9]{1,19}$"}),
    ],
    errors=(404,),
)
def errors(integration_id: str) -> tuple[Response, int]:
    """An integration's sync errors (the error summary), in id order.

    Filters module, reason, status=open|resolved|all; ``by_module`` counts all that
    match."""
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
    return respond(
        ErrorPage(
            items=items,
            next_cursor=None if page.next_after_id is None else str(page.next_after_id),
            by_module=page.by_module,
        )
    )


def _error_entry(row: SyncError) -> SyncErrorEntry:
    return SyncErrorEntry.model_validate(row)


def find_integration(session: Any, integration_id: str) -> Integration:
    """The caller's organization's integration, or 404."""
    try:
        return get_integration(session, principal().organization_id, integration_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
