"""Integration lifecycle API: sync, edit, disable, enable, delete, status, history.

Writes are admin-only; status and history are for viewers too. Pulls run in the
worker: these endpoints record a run request and answer 202 with it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import Blueprint, Response, request

from schemas.api import IntegrationEnable, IntegrationUpdate, WebhookSetup
from schemas.responses import (
    IntegrationDeleted,
    IntegrationEnabled,
    IntegrationStatusAnswer,
    IntegrationView,
    Page,
    RunView,
)
from webhook_gateway.auth import require
from webhook_gateway.errors import answering
from webhook_gateway.invoicing import parse_body
from webhook_gateway.management import find_integration, public_integration
from webhook_gateway.openapi import documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.errors import Conflict, IntegrationGone
from worker.integrations import (
    SourceMissing,
    delete_integration,
    disable,
    enable,
    history,
    request_sync,
    run_view,
    status,
    update_settings,
    webhook_setup,
)

__all__ = ["blueprint"]

blueprint = Blueprint("lifecycle", __name__, url_prefix="/api/v1/integrations")


@blueprint.post("/<integration_id>/sync")
@require("admin")
@documented({202: RunView}, errors=(404, 409, 410))
def sync(integration_id: str) -> tuple[Response, int]:
    """Instant sync: answers 202 with the run (an already open run is returned as is)."""
    with services().write() as session, _conflicts():
        run = request_sync(session, find_integration(session, integration_id))
        return respond(run_view(run), 202)


@blueprint.patch("/<integration_id>")
@require("admin")
@documented({200: IntegrationView}, body=IntegrationUpdate, errors=(404, 410))
def patch(integration_id: str) -> tuple[Response, int]:
    """Change an integration's settings (the portal itself may not change).

    A new source replaces the old one whole; null removes it."""
    change = parse_body(IntegrationUpdate)
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        update_settings(session, integration, change, settings=services().settings)
        return respond(public_integration(integration))


@blueprint.post("/<integration_id>/disable")
@require("admin")
@documented({200: IntegrationView}, errors=(404, 410))
def post_disable(integration_id: str) -> tuple[Response, int]:
    """Pause an integration: later events are kept but not applied; a pull stops."""
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        disable(session, integration)
        return respond(public_integration(integration))


@blueprint.post("/<integration_id>/enable")
@require("admin")
@documented(
    {200: IntegrationEnabled, 202: IntegrationEnabled},
    body=IntegrationEnable,
    errors=(404, 409, 410),
)
def post_enable(integration_id: str) -> tuple[Response, int]:
    """Resume a disabled integration from each module's last sync time.

    202 with the resume run; 200 (run null) if it was not disabled; another portal
    id is 409."""
    body = parse_body(IntegrationEnable)
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        run = enable(session, integration, body.portal_id)
        answer = IntegrationEnabled(
            **dict(public_integration(integration)),
            run=run_view(run) if run is not None else None,
        )
        return respond(answer, 202 if run is not None else 200)


@blueprint.delete("/<integration_id>")
@require("admin")
@documented({200: IntegrationDeleted}, errors=(404, 410))
def delete(integration_id: str) -> tuple[Response, int]:
    """Disconnect a portal; its synced projects stay, as standalone projects."""
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        standalone = delete_integration(session, integration)
        answer = IntegrationDeleted(
            **dict(public_integration(integration)), standalone_projects=standalone
        )
        return respond(answer)


@blueprint.get("/<integration_id>/status")
@require("viewer")
@documented({200: IntegrationStatusAnswer}, errors=(404,))
def get_status(integration_id: str) -> tuple[Response, int]:
    """An integration's state and, per module, last sync time, records synced and errors."""
    with services().read() as session:
        report = status(session, find_integration(session, integration_id)).view()
    return respond(IntegrationStatusAnswer(**dict(report), **services().queue_depths()))


@blueprint.get("/<integration_id>/history")
@require("viewer")
@documented({200: Page[RunView]}, errors=(404,))
def get_history(integration_id: str) -> tuple[Response, int]:
    """An integration's sync runs, newest first."""
    with services().read() as session:
        runs = history(session, find_integration(session, integration_id))
        return respond(Page[RunView](items=[run_view(r) for r in runs]))


@blueprint.get("/<integration_id>/webhook-setup")
@require("viewer")
@documented({200: WebhookSetup}, errors=(404,))
def get_webhook_setup(integration_id: str) -> tuple[Response, int]:
    """What to paste into Zoho Projects' webhook forms; the token is never shown again."""
    base_url = services().settings.public_url or request.host_url
    with services().read() as session:
        setup = webhook_setup(find_integration(session, integration_id), base_url)
    return respond(setup)


def _no_source_message(exc: SourceMissing) -> str:
    return (
        f"integration {exc.integration_id} has no pull source; set one with "
        "PATCH /api/v1/integrations/<id> {'source': …}"
    )


def _conflicts() -> AbstractContextManager[None]:
    """Lifecycle refusals: 410 for a deleted integration, 409 for a state clash."""
    return answering(
        (IntegrationGone, 410, "integration_deleted"),
        (SourceMissing, 409, "no_pull_source", _no_source_message),
        (Conflict, 409, "conflict"),
    )
