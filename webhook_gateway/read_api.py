"""Read API for synced records: ``GET /api/v1/<resource>`` and ``/<resource>/<id>``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from schemas.payloads import BIGINT_MAX
from schemas.responses import Page, RecordPage
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, parse_int
from webhook_gateway.openapi import Operation, Param, documented_each
from webhook_gateway.responses import respond
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


def _list_operation(name: str) -> Operation:
    resource = RESOURCES[name]
    return Operation(
        # The item type is known at run time only: no Page[...] a type checker can read.
        answers={200: Page.__class_getitem__(resource.view)},
        query=(
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            ),
            Param("cursor", {"type": "string"}, "The next_cursor of the previous page."),
            *(_filter_param(resource, f) for f in (*resource.filters, *resource.links)),
        ),
        summary=f"List {name}",
        description="Live records in id order; filters are exact matches.",
    )


def _filter_param(resource: Resource, name: str) -> Param:
    link = resource.links.get(name)
    column: Any = link.on if link is not None else getattr(resource.model, name)
    schema: dict[str, Any]
    if column.type.python_type is int:
        schema = {"type": "integer", "minimum": 0, "maximum": BIGINT_MAX}
    elif name in resource.choices:
        schema = {"type": "string", "enum": list(resource.choices[name])}
    else:
        schema = {"type": "string"}
    return Param(name, schema)


def _detail_operation(name: str) -> Operation:
    return Operation(
        answers={200: RESOURCES[name].view}, errors=(404,), summary=f"One of the {name}"
    )


@blueprint.get("/<any(" + ",".join(RESOURCES) + "):name>")
@require("viewer")
@documented_each(_list_operation)
def list_view(name: str) -> tuple[Response, int]:
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
    return respond(RecordPage(items=page.items, next_cursor=page.next_cursor))


@blueprint.get("/<any(" + ",".join(RESOURCES) + "):name>/<int:record_id>")
@require("viewer")
@documented_each(_detail_operation)
def detail_view(name: str, record_id: int) -> tuple[Response, int]:
    try:
        with services().read() as session:
            record = get_record(session, RESOURCES[name], principal().organization_id, record_id)
    except NotFound as exc:
        raise ApiError(404, "not_found", f"no {name} record {record_id}") from exc
    return respond(record)
