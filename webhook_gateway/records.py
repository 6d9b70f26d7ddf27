"""Read API for synced records: ``GET /api/v1/<resource>`` and ``/<resource>/<id>``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError
from webhook_gateway.services import services
from worker.errors import NotFound
from worker.readmodels import RESOURCES, InvalidCursor, InvalidFilter, get_record, list_records

__all__ = ["blueprint"]

blueprint = Blueprint("records", __name__, url_prefix="/api/v1")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _limit() -> int:
    raw = request.args.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ApiError(422, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


@blueprint.get("/<any(" + ",".join(RESOURCES) + "):name>")
@require("viewer")
def list_view(name: str) -> Response:
    resource = RESOURCES[name]
    filters = {
        k: v for k, v in request.args.items() if k in resource.filters or k in resource.links
    }
    try:
        with services().read() as session:
            page = list_records(
                session,
                resource,
                principal().organization_id,
                filters=filters,
                limit=_limit(),
                cursor=request.args.get("cursor"),
            )
    except (InvalidCursor, InvalidFilter) as exc:
        raise ApiError(422, "invalid_query", str(exc)) from exc
    return jsonify({"items": page.items, "next_cursor": page.next_cursor})


@blueprint.get("/<any(" + ",".join(RESOURCES) + "):name>/<int:record_id>")
@require("viewer")
def detail_view(name: str, record_id: int) -> Response:
    try:
        with services().read() as session:
            record = get_record(session, RESOURCES[name], principal().organization_id, record_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", f"no {name} record {record_id}") from exc
    return jsonify(record)
