"""Read API for synced records: ``GET /api/v1/<resource>`` and ``/<resource>/<id>``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from schemas.payloads import BIGINT_MAX
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, parse_int
from webhook_gateway.services import services
from worker.accounts import (
    RESOURCES,
    InvalidCursor,
    InvalidFilter,
    Resource,
    decode_cursor,
    get_record,
    list_records,
)
from worker.errors import NotFound

__all__ = ["blueprint"]

blueprint = Blueprint("records", __name__, url_prefix="/api/v1")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _limit() -> int:
    limit = parse_int(request.args.get("limit", str(DEFAULT_LIMIT)), low=1, high=MAX_LIMIT)
    if limit is None:
        raise ApiError(422, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def _filters(resource: Resource) -> dict[str, str]:
    """The query's filters; an id filter must be an id the database can hold (422)."""
    filters = {
        k: v for k, v in request.args.items() if k in resource.filters or k in resource.links
    }
    for name, value in filters.items():
        link = resource.links.get(name)
        column: Any = link.on if link is not None else getattr(resource.model, name)
        if column.type.python_type is int and parse_int(value, high=BIGINT_MAX) is None:
            raise ApiError(422, "invalid_query", f"{name} must be an integer id, got {value!r}")
    return filters


def _cursor() -> str | None:
    """The cursor, if it is one this API handed out (a row id within BIGINT)."""
    cursor = request.args.get("cursor")
    if cursor:
        try:
            after = decode_cursor(cursor)
        except InvalidCursor as exc:
            raise ApiError(422, "invalid_query", str(exc)) from exc
        if not 0 <= after <= BIGINT_MAX:
            raise ApiError(422, "invalid_query", f"invalid cursor {cursor!r}")
    return cursor


@blueprint.get("/<any(" + ",".join(RESOURCES) + "):name>")
@require("viewer")
def list_view(name: str) -> Response:
    resource = RESOURCES[name]
    filters, limit, cursor = _filters(resource), _limit(), _cursor()
    try:
        with services().read() as session:
            page = list_records(
                session,
                resource,
                principal().organization_id,
                filters=filters,
                limit=limit,
                cursor=cursor,
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
