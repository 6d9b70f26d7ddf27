"""Dead-letter API: the same filter, dry run, rate and confirm-before-delete as
``billsync dlq``, scoped to the caller's organization.

Dead letters that name no integration (bodies that were not a queue message at
all) belong to no organization: operators reach them with the CLI.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from schemas.api import DeadLetterBulk, DeadLetterQuery, DeadLetterReplayOne
from schemas.responses import (
    DeadLetterDeleted,
    DeadLetterDetail,
    DeadLetterPage,
    DryRun,
    ReplayAnswer,
)
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, invalid_body, query_int
from webhook_gateway.invoicing import parse_body
from webhook_gateway.openapi import Param, documented, query_params
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.db import DeadLetter
from worker.errors import BrokerUnavailable
from worker.integrations import organization_integrations
from worker.messaging import (
    DeadLetterFilter,
    IntegrationUnknown,
    InvalidEdit,
    count,
    dead_letter_detail,
    dead_letter_view,
    delete_matching,
    edit,
    find,
    replay,
)

__all__ = ["blueprint"]

blueprint = Blueprint("dead_letters", __name__, url_prefix="/api/v1/dead-letters")


_PAGING = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    Param("cursor", {"type": "string", "pattern": "^[0-9]{1,19}$"}, "The previous next_cursor."),
)


@blueprint.get("")
@require("viewer")
@documented({200: DeadLetterPage}, query=(*query_params(DeadLetterQuery), *_PAGING))
def list_dead_letters() -> tuple[Response, int]:
    """The organization's dead letters, oldest first, and how many match in all."""
    try:
        query = DeadLetterQuery.model_validate(_query_filter())
    except ValidationError as exc:
        raise invalid_body(exc, "query") from exc
    limit = query_int("limit", 50, low=1, high=500)
    after = query_int("cursor", 0)
    with services().read() as session:
        flt = _scoped(session, query)
        rows = find(session, flt, limit=limit, after_id=after)
        return respond(
            DeadLetterPage(
                items=[dead_letter_view(r) for r in rows],
                next_cursor=str(rows[-1].id) if len(rows) == limit else None,
                total=count(session, flt),
            )
        )


def _query_filter() -> dict[str, str | list[str]]:
    """The filter in the query string; ``ids`` may be given more than once."""
    found: dict[str, str | list[str]] = {
        k: v for k, v in request.args.items() if k not in ("limit", "cursor", "ids")
    }
    if "ids" in request.args:
        found["ids"] = request.args.getlist("ids")
    return found


@blueprint.get("/<int:dead_letter_id>")
@require("viewer")
@documented({200: DeadLetterDetail}, errors=(404,))
def show(dead_letter_id: int) -> tuple[Response, int]:
    """One dead letter whole: its message (or body), headers and traceback."""
    with services().read() as session:
        return respond(dead_letter_detail(_one(session, dead_letter_id)))


@blueprint.post("/replay")
@require("admin")
@documented({200: ReplayAnswer | DryRun}, body=DeadLetterBulk)
def replay_matching() -> tuple[Response, int]:
    """Replay the dead letters that match (at most ``limit`` per call, paced by ``rate``).

    With ``dry_run``, only how many match. 503 broker_unavailable: what was confirmed
    is replayed, call again for the rest."""
    body = parse_body(DeadLetterBulk)
    svc = services()
    with svc.read() as session:
        flt = _scoped(session, body.filter)
        if body.dry_run:
            return respond(DryRun(matching=count(session, flt)))
    try:
        result = replay(svc.sessions, svc.publisher, flt, rate=body.rate, limit=body.limit)
    except BrokerUnavailable as exc:
        raise ApiError(
            503,
            "broker_unavailable",
            "the replay stopped; what was confirmed is replayed, call again for the rest",
            headers={"Retry-After": str(svc.settings.retry_after_seconds)},
        ) from exc
    return respond(ReplayAnswer.model_validate(result, from_attributes=True))


@blueprint.post("/<int:dead_letter_id>/replay")
@require("admin")
@documented({200: ReplayAnswer}, body=DeadLetterReplayOne, errors=(404, 409))
def replay_one(dead_letter_id: int) -> tuple[Response, int]:
    """Replay one dead letter, after replacing its event when ``event`` is given.

    Only the edit is validated; an unreadable letter is repaired with it, under
    ``event_id`` if given (409 integration_unknown when the integration it belongs to
    cannot be told)."""
    body = parse_body(DeadLetterReplayOne)
    if body.event is None and body.event_id is not None:
        raise ApiError(422, "validation_failed", "event_id is only taken with an edited event")
    svc = services()
    with svc.write() as session:
        row = _one(session, dead_letter_id)
        if body.event is not None:
            try:
                edit(
                    session,
                    row,
                    body.event,
                    by=f"token:{principal().token_id}",
                    event_id=body.event_id,
                )
            except InvalidEdit as exc:
                raise invalid_body(exc.errors, "event") from exc
            except IntegrationUnknown as exc:
                raise ApiError(409, "integration_unknown", str(exc)) from exc
    try:
        result = replay(svc.sessions, svc.publisher, DeadLetterFilter(ids=(dead_letter_id,)))
    except BrokerUnavailable as exc:
        raise ApiError(503, "broker_unavailable", "not replayed; try again later") from exc
    return respond(ReplayAnswer.model_validate(result, from_attributes=True))


@blueprint.post("/delete")
@require("admin")
@documented({200: DeadLetterDeleted | DryRun}, body=DeadLetterBulk)
def delete_bulk() -> tuple[Response, int]:
    """Delete the dead letters that match (with ``dry_run``, only how many match)."""
    body = parse_body(DeadLetterBulk)
    with services().write() as session:
        flt = _scoped(session, body.filter)
        if body.dry_run:
            return respond(DryRun(matching=count(session, flt)))
        return respond(DeadLetterDeleted(deleted=delete_matching(session, flt)))


@blueprint.delete("/<int:dead_letter_id>")
@require("admin")
@documented({200: DeadLetterDeleted}, errors=(404,))
def delete_one(dead_letter_id: int) -> tuple[Response, int]:
    """Delete one dead letter."""
    with services().write() as session:
        _one(session, dead_letter_id)
        deleted = delete_matching(session, DeadLetterFilter(ids=(dead_letter_id,)))
        return respond(DeadLetterDeleted(deleted=deleted))


def _organization_integrations(session: Session) -> frozenset[str]:
    integrations = organization_integrations(session, principal().organization_id)
    return frozenset(i.id for i in integrations)


def _scoped(session: Session, query: DeadLetterQuery) -> DeadLetterFilter:
    return DeadLetterFilter.matching(query, _organization_integrations(session))


def _one(session: Session, dead_letter_id: int) -> DeadLetter:
    row = session.get(DeadLetter, dead_letter_id)
    if row is None or row.integration_id not in _organization_integrations(session):
        raise ApiError(404, "not_found", f"no dead letter {dead_letter_id}")
    return row
