"""POST /webhooks/<integration_id>: verify, validate, publish durably, then 202.

Checks run in this order, each with its status: unknown integration 404, deleted
409, body over the limit 413, not JSON 415, body not UTF-8 400, signature or token
401, malformed JSON 400, schema 422, broker did not confirm 503 (with Retry-After).
A 202 is sent only after the broker confirmed every message of the request.

No database round trip on the way of a known integration's webhook: its credentials
come from the gateway's cache, and an event sent again is simply queued again (the
worker's ledger skips event ids it already applied: exactly-once is the worker's
guarantee, so the gateway does not look them up). So during a database outage
webhooks keep being accepted, not refused: Zoho does not retry a refused webhook, so
a 503 would lose the event, while the broker keeps it until the worker can apply it;
the cache serves an entry past its freshness while the database cannot answer. Only
an integration the process has not seen since it started, which cannot be verified
without the database, is answered 503 ``database_unavailable`` with Retry-After.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated

from flask import Blueprint, Response, request
from pydantic import Field, ValidationError

from schemas import QueueMessage, WebhookEvent, event_adapter, events_adapter
from schemas.headers import WEBHOOK_TOKEN_HEADER
from schemas.responses import WebhookAccepted, WebhookBatchAccepted
from webhook_gateway.errors import ApiError, database_unavailable, invalid_body
from webhook_gateway.openapi import Param, documented
from webhook_gateway.responses import respond
from webhook_gateway.services import services
from webhook_gateway.signatures import (
    REQUIRED_HEADERS,
    InvalidSignature,
    verify_signature,
    verify_token,
)
from worker.errors import BrokerUnavailable, DatabaseUnavailable
from worker.integrations import WebhookCredentials

__all__ = ["blueprint"]

blueprint = Blueprint("webhooks", __name__)

# Integration ids are UUIDs (a String(36) column): anything else is unknown without
# a query, and is not cached either.
_INTEGRATION_ID = re.compile(r"[0-9A-Za-z-]{1,36}")
# What the processed_events column (String(200)) can store.
_EVENT_ID = re.compile(r"[^\x00]{1,200}")


_STANDARD_WEBHOOKS = (
    Param(
        "webhook-id",
        {"type": "string", "maxLength": 200},
        "Standard Webhooks: the message id (the event id where the body gives none).",
        where="header",
    ),
    Param(
        "webhook-timestamp",
        {"type": "string", "pattern": "^[0-9]+$"},
        "Standard Webhooks: seconds since the epoch, signed with the body.",
        where="header",
    ),
    Param(
        "webhook-signature",
        {"type": "string"},
        "Standard Webhooks: v1,<base64 HMAC-SHA256 of id.timestamp.body> (signature mode).",
        where="header",
    ),
    Param(
        WEBHOOK_TOKEN_HEADER,
        {"type": "string"},
        "The webhook token (token mode), or the token query parameter.",
        where="header",
    ),
)


@blueprint.post("/webhooks/<integration_id>")
@documented(
    {202: WebhookAccepted | WebhookBatchAccepted},
    body=WebhookEvent | Annotated[list[WebhookEvent], Field(min_length=1)],
    query=[Param("token", {"type": "string"}, "The webhook token (token mode).")],
    headers=_STANDARD_WEBHOOKS,
    errors=(401, 404, 409, 415),
    authenticated=False,
)
def receive(integration_id: str) -> tuple[Response, int]:
    """Receive a portal's change event, or an array of them.

    Verified (the Standard Webhooks signature, or the token), validated, and queued
    durably before the 202; an event sent again is queued again, and the worker
    applies each event id once. 404 unknown_integration, 409 integration_deleted, 413
    over the size limit, 415 not JSON, 401 invalid_signature, 503 when the broker did
    not confirm (retry after Retry-After)."""
    svc = services()
    credentials = _credentials(integration_id)
    body = _read_body(svc.settings.webhook_max_bytes)
    _authenticate(credentials, body)
    events, many = _parse(body)
    received_at = datetime.now(UTC)
    # The events are validated instances, which pydantic takes as they are (no second
    # validation: measured, this costs what model_construct does), so only the ids are
    # checked here.
    messages = [
        QueueMessage(
            event_id=_event_id(e, i, many),
            integration_id=integration_id,
            received_at=received_at,
            event=e,
        )
        for i, e in enumerate(events)
    ]
    try:
        svc.publisher.publish(messages)
    except BrokerUnavailable as exc:
        retry_after = str(svc.settings.retry_after_seconds)
        raise ApiError(
            503,
            "broker_unavailable",
            "the event was not accepted; retry later",
            details=str(exc),
            headers={"Retry-After": retry_after},
        ) from exc

    results = [WebhookAccepted(event_id=m.event_id, status="queued") for m in messages]
    return respond(WebhookBatchAccepted(items=results) if many else results[0], 202)


def _credentials(integration_id: str, *, fresh: bool = False) -> WebhookCredentials:
    if not _INTEGRATION_ID.fullmatch(integration_id):
        raise ApiError(404, "unknown_integration", "no such integration")
    try:
        credentials = services().credentials(integration_id, fresh=fresh)
    except DatabaseUnavailable as exc:
        raise database_unavailable() from exc
    if credentials is None:
        raise ApiError(404, "unknown_integration", f"no integration {integration_id}")
    if credentials.deleted:
        raise ApiError(409, "integration_deleted", f"integration {integration_id} was deleted")
    return credentials


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"body is over the {limit}-byte limit")
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send Content-Type: application/json",
            details={"content_type": request.content_type},
        )
    # MAX_CONTENT_LENGTH bounds bodies without a Content-Length (chunked) too.
    body = request.get_data(cache=True)
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # JSON is UTF-8 (RFC 8259), so this is malformed whoever signed it; told apart
        # here because the signature check reads the body as text and would say 401.
        raise ApiError(400, "malformed_json", "the body is not UTF-8") from exc
    return body


def _authenticate(credentials: WebhookCredentials, body: bytes) -> None:
    try:
        _verify(credentials, body)
    except InvalidSignature:
        # The cached secrets may predate a rotation: check once more against the database.
        fresh = _credentials(credentials.integration_id, fresh=True)
        try:
            _verify(fresh, body)
        except InvalidSignature as exc:
            raise ApiError(401, "invalid_signature", str(exc)) from exc


def _verify(credentials: WebhookCredentials, body: bytes) -> None:
    """Raise InvalidSignature unless the request is proven to come from the sender."""
    if credentials.verification == "token":
        provided = request.headers.get(WEBHOOK_TOKEN_HEADER) or request.args.get("token")
        verify_token(provided, credentials.token_hash)
    else:
        headers = request.headers  # only the signature's headers, not a copy of all
        verify_signature(
            body, {name: headers.get(name, "") for name in REQUIRED_HEADERS}, credentials.secrets
        )


def _parse(body: bytes) -> tuple[list[WebhookEvent], bool]:
    many = body.lstrip()[:1] == b"["
    try:
        if many:
            events = events_adapter.validate_json(body)
            if not events:
                raise ApiError(422, "validation_failed", "the event array is empty")
            return events, True
        return [event_adapter.validate_json(body)], False
    except ValidationError as exc:
        raise invalid_body(exc, "event") from exc


def _event_id(event: WebhookEvent, index: int, many: bool) -> str:
    """The envelope's event_id, else the webhook-id header, else a hash of the event.

    The hash makes retries of an unsigned, id-less event (token mode) dedupe too.
    """
    if event.event_id:
        return event.event_id
    header = request.headers.get("webhook-id")
    if header:
        event_id = f"{header}-{index}" if many else header
        if not _EVENT_ID.fullmatch(event_id):
            raise ApiError(
                422,
                "validation_failed",
                "the webhook-id header cannot be an event id: give event_id in the body",
                details=[
                    {
                        "path": "webhook-id",
                        "message": "up to 200 characters, without NUL",
                        "type": "event_id",
                    }
                ],
            )
        return event_id
    digest = hashlib.sha256(event.model_dump_json().encode()).hexdigest()
    return f"sha256-{digest}"
