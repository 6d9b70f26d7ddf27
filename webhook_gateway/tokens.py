"""Token API: list, create and revoke the organization's API tokens (admin).

An admin revoking the very token it calls with is refused (409) unless it says
``?self=true``: a slip would otherwise lock the caller out of the API, leaving
only the CLI (``billsync token create``) to get back in.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from schemas.tokens import TokenCreate, TokenCreated, TokenList, TokenView
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError
from webhook_gateway.invoicing import parse_body
from webhook_gateway.services import services
from worker.accounts import issue_token, list_tokens, revoke_token
from worker.db import ApiToken
from worker.errors import NotFound

__all__ = ["blueprint"]

blueprint = Blueprint("tokens", __name__, url_prefix="/api/v1")


@blueprint.get("/tokens")
@require("admin")
def get_tokens() -> Response:
    with services().read() as session:
        rows = list_tokens(session, principal().organization_id)
        answer = TokenList(items=[_view(row) for row in rows])
    return jsonify(answer.model_dump(mode="json"))


@blueprint.post("/tokens")
@require("admin")
def post_token() -> tuple[Response, int]:
    body = parse_body(TokenCreate)
    with services().write() as session:
        issued = issue_token(session, principal().organization_id, body.role, body.name)
        answer = TokenCreated(**_view(issued.row).model_dump(), token=issued.token)
    return jsonify(answer.model_dump(mode="json")), 201


@blueprint.delete("/tokens/<token_id>")
@require("admin")
def delete_token(token_id: str) -> Response:
    """Revoke a token of the organization at once (its status-page sessions too)."""
    who = principal()
    if token_id == who.token_id and request.args.get("self") != "true":
        raise ApiError(
            409,
            "revoking_own_token",
            "this is the token of this request: revoke it with ?self=true if you mean it "
            "(the API will refuse it from then on)",
        )
    try:
        with services().write() as session:
            answer = _view(revoke_token(session, token_id, who.organization_id))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return jsonify(answer.model_dump(mode="json"))


def _view(row: ApiToken) -> TokenView:
    return TokenView(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
