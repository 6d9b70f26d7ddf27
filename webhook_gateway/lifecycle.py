"""Integration lifecycle API: sync, edit, disable, enable, delete, status, history.

Writes are admin-only; status and history are for viewers too. Pulls run in the
worker: these endpoints record a run request and answer 202 with it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from flask import Blueprint, Response, jsonify, request

from schemas.api import IntegrationEnable, IntegrationUpdate
from webhook_gateway.auth import require
from webhook_gateway.errors import answering
from webhook_gateway.invoicing import parse_body
from webhook_gateway.management import find_integration, public_integration
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
def sync(integration_id: str) -> tuple[Response, int]:
    """Instant sync: answers 202 with the run (an already open run is returned as is)."""
    with services().write() as session, _conflicts():
        run = request_sync(session, find_integration(session, integration_id))
        return jsonify(run_view(run)), 202


@blueprint.patch("/<integration_id>")
@require("admin")
def patch(integration_id: str) -> Response:
    change = parse_body(IntegrationUpdate)
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        update_settings(session, integration, change, settings=services().settings)
        return jsonify(public_integration(integration))


@blueprint.post("/<integration_id>/disable")
@require("admin")
def post_disable(integration_id: str) -> Response:
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        disable(session, integration)
        return jsonify(public_integration(integration))


@blueprint.post("/<integration_id>/enable")
@require("admin")
def post_enable(integration_id: str) -> tuple[Response, int]:
    """Resume from each module's last sync time; another portal id → 409."""
    body = parse_body(IntegrationEnable)
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        run = enable(session, integration, body.portal_id)
        answer = public_integration(integration)
        answer["run"] = run_view(run) if run is not None else None
        return jsonify(answer), 202 if run is not None else 200


@blueprint.delete("/<integration_id>")
@require("admin")
def delete(integration_id: str) -> Response:
    with services().write() as session, _conflicts():
        integration = find_integration(session, integration_id)
        standalone = delete_integration(session, integration)
        answer = public_integration(integration)
        answer["standalone_projects"] = standalone
        return jsonify(answer)


@blueprint.get("/<integration_id>/status")
@require("viewer")
def get_status(integration_id: str) -> Response:
    with services().read() as session:
        report = status(session, find_integration(session, integration_id)).view()
    return jsonify({**report, **services().queue_depths()})


@blueprint.get("/<integration_id>/history")
@require("viewer")
def get_history(integration_id: str) -> Response:
    with services().read() as session:
        runs = history(session, find_integration(session, integration_id))
        return jsonify({"items": [run_view(r) for r in runs], "next_cursor": None})


@blueprint.get("/<integration_id>/webhook-setup")
@require("viewer")
def get_webhook_setup(integration_id: str) -> Response:
    """What to paste into Zoho Projects' webhook forms; the token is never shown again."""
    base_url = services().settings.public_url or request.host_url
    with services().read() as session:
        setup = webhook_setup(find_integration(session, integration_id), base_url)
    return jsonify(setup.model_dump(mode="json"))


def _conflicts() -> AbstractContextManager[None]:
    """Lifecycle refusals: 410 for a deleted integration, 409 for a state clash."""
    return answering(
        (IntegrationGone, 410, "integration_deleted"),
        (SourceMissing, 409, "no_pull_source"),
        (Conflict, 409, "conflict"),
    )
