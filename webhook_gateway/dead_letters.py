"""Dead-letter API: the same filter, dry run, rate and confirm-before-delete as
``billsync dlq``, scoped to the caller's organization.

Dead letters that name no integration (bodies that were not a queue message at
all) belong to no organization: operators reach them with the CLI.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from schemas.api import DeadLetterBulk, DeadLetterQuery, DeadLetterReplayOne
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError, invalid_body, query_int
from webhook_gateway.invoicing import parse_body
from webhook_gateway.services import services
from worker.db import DeadLetter
from worker.errors import BrokerUnavailable
from worker.integrations import organization_integrations
from worker.messaging import (
    DeadLetterFilter,
    IntegrationUnknown,
    InvalidEdit,
    count,
    dead_letter_view,
    delete_matching,
    edit,
    find,
    replay,
)

__all__ = ["blueprint"]

blueprint = Blueprint("dead_letters", __name__, url_prefix="/api/v1/dead-letters")


@blueprint.get("")
@require("viewer")
def list_dead_letters() -> Response:
    """Oldest first; ``limit`` (1–500) and ``cursor`` as every list; ``total`` matching."""
    try:
        query = DeadLetterQuery.model_validate(
            {k: v for k, v in request.args.items() if k not in ("limit", "cursor")}
        )
    except ValidationError as exc:
        raise invalid_body(exc, "query") from exc
    limit = query_int("limit", 50, low=1, high=500)
    after = query_int("cursor", 0)
    with services().read() as session:
        flt = _scoped(session, query)
        rows = find(session, flt, limit=limit, after_id=after)
        return jsonify(
            {
                "items": [dead_letter_view(r) for r in rows],
                "next_cursor": str(rows[-1].id) if len(rows) == limit else None,
                "total": count(session, flt),
            }
        )


@blueprint.get("/<int:dead_letter_id>")
@require("viewer")
def show(dead_letter_id: int) -> Response:
    with services().read() as session:
        return jsonify(dead_letter_view(_one(session, dead_letter_id), whole=True))


@blueprint.post("/replay")
@require("admin")
def replay_matching() -> Response:
    """Replay what matches (at most ``limit`` per call, paced by ``rate``)."""
    body = parse_body(DeadLetterBulk)
    svc = services()
    with svc.read() as session:
        flt = _scoped(session, body.filter)
        if body.dry_run:
            return jsonify({"matching": count(session, flt), "dry_run": True})
    try:
        result = replay(svc.sessions, svc.publisher, flt, rate=body.rate, limit=body.limit)
    except BrokerUnavailable as exc:
        raise ApiError(
            503,
            "broker_unavailable",
            "the replay stopped; what was confirmed is replayed, call again for the rest",
            headers={"Retry-After": str(svc.settings.retry_after_seconds)},
        ) from exc
    return jsonify(vars(result))


@blueprint.post("/<int:dead_letter_id>/replay")
@require("admin")
def replay_one(dead_letter_id: int) -> Response:
    """Replay one dead letter, after replacing its event when ``event`` is given.

    Only the edit is validated; an unreadable letter is repaired with it (see
    ``worker.messaging.dead_letters.edit``), under ``event_id`` if given."""
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
    return jsonify(vars(result))


@blueprint.post("/delete")
@require("admin")
def delete_bulk() -> Response:
    body = parse_body(DeadLetterBulk)
    with services().write() as session:
        flt = _scoped(session, body.filter)
        if body.dry_run:
            return jsonify({"matching": count(session, flt), "dry_run": True})
        return jsonify({"deleted": delete_matching(session, flt)})


@blueprint.delete("/<int:dead_letter_id>")
@require("admin")
def delete_one(dead_letter_id: int) -> Response:
    with services().write() as session:
        _one(session, dead_letter_id)
        return jsonify(
            {"deleted": delete_matching(session, DeadLetterFilter(ids=(dead_letter_id,)))}
        )


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
