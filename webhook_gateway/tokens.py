"""Token API: list, create and revoke the organization's API tokens (admin).

An admin revoking the very token it calls with is refused (409) unless it says
``?self=true``: a slip would otherwise lock the caller out of the API, leaving
only the CLI (``billsync token create``) to get back in.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from schemas.tokens import TokenCreate, TokenCreated, TokenList, TokenView
from webhook_gateway.auth import principal, require
from webhook_gateway.errors import ApiError
from webhook_gateway.invoicing import parse_body
from webhook_gateway.openapi import Param, documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from worker.accounts import issue_token, list_tokens, revoke_token
from worker.errors import NotFound

__all__ = ["blueprint"]

blueprint = Blueprint("tokens", __name__, url_prefix="/api/v1")


@blueprint.get("/tokens")
@require("admin")
@documented({200: TokenList})
def get_tokens() -> tuple[Response, int]:
    """The organization's API tokens (never the tokens themselves)."""
    with services().read() as session:
        rows = list_tokens(session, principal().organization_id)
        answer = TokenList(items=[TokenView.model_validate(row) for row in rows])
    return respond(answer)


@blueprint.post("/tokens")
@require("admin")
@documented({201: TokenCreated}, body=TokenCreate)
def post_token() -> tuple[Response, int]:
    """Create an API token; the answer shows it this once (only its hash is kept)."""
    body = parse_body(TokenCreate)
    with services().write() as session:
        issued = issue_token(session, principal().organization_id, body.role, body.name)
        answer = TokenCreated(**dict(TokenView.model_validate(issued.row)), token=issued.token)
    return respond(answer, 201)


@blueprint.delete("/tokens/<token_id>")
@require("admin")
@documented(
    {200: TokenView},
    query=[Param("self", {"type": "string", "enum": ["true"]}, "Revoke this request's token.")],
    errors=(404, 409),
)
def delete_token(token_id: str) -> tuple[Response, int]:
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
            answer = TokenView.model_validate(revoke_token(session, token_id, who.organization_id))
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return respond(answer)
