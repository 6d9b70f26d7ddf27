"""Dead letters: archived from the dead-letter queue, found by filter, replayed safely.

The worker dead-letters an event with its error in the message headers (see
``worker.messaging.consumer``); RabbitMQ dead-letters one that exceeded the quorum queue's
delivery limit with an ``x-death`` header. ``DeadLetterArchiver`` consumes
``billsync.dead-letters`` and stores each message as a ``DeadLetter`` row, acking
only after the row is committed, so nothing is lost between queue and table.

Replay publishes the original message again (``source: replay``, same event id)
and deletes its row only after the broker confirmed the publish. A replay cut
off midway therefore loses nothing; the worst case is a message published twice,
which the consumer's event-id dedupe turns into one effect. An edit before a
replay is kept as an audit row with the body before and after.

A row keeps the traceback once, in its ``traceback`` column: the stored headers are
the message's without it (migration 0011 took it out of older rows).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu.connection import Connection
from kombu.messaging import Consumer
from kombu.mixins import ConsumerMixin
from kombu.transport.base import Message
from pydantic import ValidationError
from sqlalchemy import ColumnElement, Row, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage, WebhookEvent, event_adapter
from schemas.api import DeadLetterQuery
from schemas.headers import (
    ATTEMPTS_HEADER,
    ERROR_CLASS_HEADER,
    ERROR_MESSAGE_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_FAILURE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    TRACEBACK_HEADER,
)
from schemas.payloads import TRUSTED
from schemas.responses import DeadLetterDetail, DeadLetterView
from worker.db import DeadLetter, DeadLetterEdit, Integration
from worker.errors import Conflict, Refused
from worker.messaging.publisher import Publisher
from worker.messaging.topology import Topology

__all__ = [
    "DeadLetterArchiver",
    "DeadLetterFilter",
    "IntegrationUnknown",
    "InvalidEdit",
    "ReplayResult",
    "archive",
    "count",
    "dead_letter_detail",
    "dead_letter_view",
    "delete_matching",
    "edit",
    "find",
    "replay",
]

log = logging.getLogger(__name__)

# Dead letters read, published (one pipelined batch, every confirm awaited) and then
# deleted per transaction: a crash replays at most this many again.
REPLAY_CHUNK = 1_000


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; unset fields match everything.

    ``integration_ids`` scopes to an organization's integrations (the API sets it).
    """

    integration_ids: frozenset[str] | None = None
    integration_id: str | None = None
    module: str | None = None
    action: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    event_id: str | None = None
    ids: tuple[int, ...] = ()

    @classmethod
    def matching(
        cls, query: DeadLetterQuery, integration_ids: frozenset[str] | None = None
    ) -> DeadLetterFilter:
        """The filter a CLI or API query asks for, optionally scoped to integrations."""
        return cls(
            integration_ids=integration_ids,
            integration_id=query.integration_id,
            module=query.module,
            action=query.action,
            error_class=query.error_class,
            since=query.since,
            until=query.until,
            event_id=query.event_id,
            ids=tuple(query.ids),
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.integration_ids is not None:
            conditions.append(DeadLetter.integration_id.in_(self.integration_ids))
        for column, value in (
            (DeadLetter.integration_id, self.integration_id),
            (DeadLetter.module, self.module),
            (DeadLetter.action, self.action),
            (DeadLetter.error_class, self.error_class),
            (DeadLetter.event_id, self.event_id),
        ):
            if value is not None:
                conditions.append(column == value)
        if self.since is not None:
            conditions.append(DeadLetter.dead_at >= self.since)
        if self.until is not None:
            conditions.append(DeadLetter.dead_at < self.until)
        if self.ids:
            conditions.append(DeadLetter.id.in_(self.ids))
        return conditions


def find(
    session: Session, flt: DeadLetterFilter, *, limit: int = 100, after_id: int = 0
) -> list[DeadLetter]:
    """Matching dead letters, oldest first, after ``after_id`` (for paging)."""
    stmt = (
        select(DeadLetter)
        .where(*flt.conditions(), DeadLetter.id > after_id)
        .order_by(DeadLetter.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def count(session: Session, flt: DeadLetterFilter) -> int:
    total = session.scalar(select(func.count()).select_from(DeadLetter).where(*flt.conditions()))
    return int(total or 0)


def delete_matching(session: Session, flt: DeadLetterFilter) -> int:
    """Delete the matching dead letters (their edit audit stays); returns how many."""
    result = session.execute(delete(DeadLetter).where(*flt.conditions()))
    return int(getattr(result, "rowcount", 0) or 0)


class InvalidEdit(Refused):
    """The edited event does not fit the webhook contract (``errors`` says where)."""

    def __init__(self, errors: ValidationError) -> None:
        super().__init__(f"the edited event does not fit the contract: {errors}")
        self.errors = errors


class IntegrationUnknown(Conflict):
    """An unreadable dead letter is being repaired, but which integration its event
    belongs to is not known (or the one given does not exist or contradicts it)."""


def edit(
    session: Session,
    dead_letter: DeadLetter,
    event: dict[str, Any],
    by: str,
    *,
    event_id: str | None = None,
    integration_id: str | None = None,
) -> None:
    """Replace the event of a dead letter (validated as a webhook event), keeping an audit.

    Only the edit is validated. A readable letter keeps its event id (``event_id``
    replaces it) and integration. An unreadable one — a body that never was a queue
    message — is repaired: the edit becomes a new queue message for the letter's
    integration, or ``integration_id`` when the letter names none, with ``event_id``,
    else the edited event's own ``event_id``, else a new ``dlq-<id>-…`` id (the
    original event, if it ever existed, cannot be known to have been applied).

    Raises InvalidEdit for an edit that does not fit the contract, IntegrationUnknown
    when an unreadable letter's integration is not known.
    """
    original = _readable(dead_letter.body)
    try:  # only the edit is validated here: the event, and the event id if one is given
        validated = event_adapter.validate_python(event)
        if original is not None:
            edited = QueueMessage(
                event_id=event_id or original.event_id,
                integration_id=original.integration_id,
                source=original.source,
                received_at=original.received_at,
                event=validated,
            )
        else:
            edited = _repaired(session, dead_letter, validated, event_id, integration_id)
    except ValidationError as exc:
        raise InvalidEdit(exc) from exc
    session.add(
        DeadLetterEdit(
            dead_letter_id=dead_letter.id,
            event_id=edited.event_id,
            original=dead_letter.body,
            edited=edited.model_dump_json(),
            edited_by=by,
        )
    )
    dead_letter.body = edited.model_dump_json()
    dead_letter.event_id = edited.event_id
    dead_letter.integration_id = edited.integration_id
    dead_letter.module = validated.module.value
    dead_letter.action = validated.action.value


def _readable(body: str) -> QueueMessage | None:
    try:
        return QueueMessage.model_validate_json(body)
    except ValidationError:
        return None


def _repaired(
    session: Session,
    dead_letter: DeadLetter,
    event: WebhookEvent,
    event_id: str | None,
    integration_id: str | None,
) -> QueueMessage:
    """A new queue message for an unreadable dead letter's edited event."""
    known = dead_letter.integration_id
    if known and integration_id and integration_id != known:
        raise IntegrationUnknown(
            f"dead letter {dead_letter.id} names integration {known}, not {integration_id}"
        )
    owner = known or integration_id
    if not owner:
        raise IntegrationUnknown(
            f"dead letter {dead_letter.id} is unreadable and names no integration: "
            "give the integration its event belongs to"
        )
    if session.get(Integration, owner) is None:
        raise IntegrationUnknown(f"no integration {owner}")
    return QueueMessage(
        event_id=event_id or event.event_id or f"dlq-{dead_letter.id}-{uuid.uuid4().hex[:12]}",
        integration_id=owner,
        source="replay",
        event=event,
    )


def dead_letter_view(row: DeadLetter) -> DeadLetterView:
    """A dead letter as the CLI and API list it."""
    return DeadLetterView.model_validate(row)


def dead_letter_detail(row: DeadLetter) -> DeadLetterDetail:
    """A dead letter whole: its message (or its body as text when it is not JSON),
    its headers and the traceback of its last failure."""
    whole = {
        **dict(DeadLetterView.model_validate(row)),
        # Stored headers hold no traceback since migration 0011; an archiver of an older
        # billsync still running during the upgrade may have stored one after it.
        "headers": {k: v for k, v in row.headers.items() if k != TRACEBACK_HEADER},
        "traceback": row.traceback,
    }
    try:
        whole["message"] = json.loads(row.body)
    except ValueError:
        whole["body"] = row.body
    return DeadLetterDetail.model_validate(whole)


@dataclass
class ReplayResult:
    matched: int
    replayed: int = 0
    unreadable: int = 0  # bodies that are not a queue message: edit or delete them


ReplayProgress = Callable[[int, int], None]


def replay(
    sessions: sessionmaker[Session],
    publisher: Publisher,
    flt: DeadLetterFilter,
    *,
    rate: float | None = None,
    limit: int | None = None,
    on_progress: ReplayProgress | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """Republish matching dead letters, oldest first; each row goes once its publish is
    confirmed. ``rate`` caps messages per second (live traffic keeps its share);
    ``clock`` and ``sleep`` pace it (tests inject a fake clock).

    Per chunk of ``REPLAY_CHUNK``, one transaction: read only ids and bodies (a row's
    traceback and headers are most of its size, and replay needs neither), publish the
    readable ones as one pipelined batch, wait for every confirm, delete those rows in
    one statement, commit. Nothing is deleted before its confirm; a crash replays at
    most the chunk in flight again, which the worker's event-id ledger makes harmless.
    """
    with sessions() as session:
        matched = count(session, flt)
    total = min(matched, limit) if limit is not None else matched
    result = ReplayResult(matched=matched)
    # Rate-limited: chunks of a tenth of a second's worth, each published on schedule.
    chunk = max(1, min(REPLAY_CHUNK, int(rate / 10))) if rate else REPLAY_CHUNK
    started = clock()
    after_id = 0
    while result.replayed + result.unreadable < total:
        want = min(chunk, total - result.replayed - result.unreadable)
        with sessions.begin() as session:
            rows = session.execute(
                select(DeadLetter.id, DeadLetter.body)
                .where(*flt.conditions(), DeadLetter.id > after_id)
                .order_by(DeadLetter.id)
                .limit(want)
            ).all()
            if not rows:
                break
            after_id = rows[-1][0]
            messages, done = _replayable(rows, result)
            if rate:
                _pace(started, result.replayed, rate, clock, sleep)
            if messages:
                publisher.publish(messages)
                session.execute(delete(DeadLetter).where(DeadLetter.id.in_(done)))
            result.replayed += len(messages)
        if on_progress is not None:
            on_progress(result.replayed + result.unreadable, total)
    log.info(
        "dead letters replayed",
        extra={"fields": {"matched": matched, "replayed": result.replayed}},
    )
    return result


def _replayable(
    rows: Sequence[Row[int, str]], result: ReplayResult
) -> tuple[list[QueueMessage], list[int]]:
    """The queue messages among ``rows`` (``source: replay``) and their row ids; counts
    the rest as unreadable.

    Read under ``TRUSTED``: a dead letter's body is a queue message billsync made (the
    gateway, a pull, an edit) from the validated model, so its e-mail addresses are in
    normal form already, and checking them again was most of the cost of reading one.
    """
    messages, ids = [], []
    for row_id, body in rows:
        try:
            original = QueueMessage.model_validate_json(body, context=TRUSTED)
        except ValidationError:
            result.unreadable += 1
            continue
        messages.append(original.model_copy(update={"source": "replay"}))
        ids.append(row_id)
    return messages, ids


def _pace(
    started: float,
    sent: int,
    rate: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    """Sleep until the ``sent``-th message is due at ``rate`` per second."""
    delay = started + sent / rate - clock()
    if delay > 0:
        sleep(delay)


# -- archiving ------------------------------------------------------------------------


def archive(
    session: Session, body: bytes | str, headers: dict[str, Any], routing_key: str
) -> DeadLetter:
    """Store one dead-lettered message; the filter fields are read out of it."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    fields: dict[str, Any] = {}
    try:
        message = json.loads(text)
        event = message.get("event") or {}
        fields = {
            "integration_id": message.get("integration_id"),
            "event_id": message.get("event_id"),
            "module": event.get("module"),
            "action": event.get("action"),
        }
    except (ValueError, AttributeError):
        pass
    error_class, error_message, attempts = _error_of(headers)
    row = DeadLetter(
        **{k: str(v)[:200] if v is not None else None for k, v in fields.items()},
        routing_key=str(headers.get(ORIGINAL_ROUTING_KEY_HEADER) or routing_key)[:100],
        error_class=error_class,
        error_message=error_message,
        traceback=str(headers.get(TRACEBACK_HEADER, "")),
        attempts=attempts,
        first_failure_at=_time(headers.get(FIRST_FAILURE_HEADER)),
        last_failure_at=_time(headers.get(LAST_FAILURE_HEADER)),
        body=text,
        # The traceback is kept once, in its column: in the headers too it doubled a
        # row's size, and replay reads neither.
        headers=json.loads(
            json.dumps({k: v for k, v in headers.items() if k != TRACEBACK_HEADER}, default=str)
        ),
    )
    session.add(row)
    session.flush()
    return row


def _error_of(headers: dict[str, Any]) -> tuple[str, str, int]:
    """(error class, message, attempts) from billsync's headers or RabbitMQ's x-death."""
    if ERROR_CLASS_HEADER in headers:
        return (
            str(headers[ERROR_CLASS_HEADER]),
            str(headers.get(ERROR_MESSAGE_HEADER, "")),
            int(headers.get(ATTEMPTS_HEADER) or 0),
        )
    deaths = headers.get("x-death") or [{}]
    reason = str(deaths[0].get("reason", "unknown"))
    attempts = int(headers.get("x-delivery-count") or deaths[0].get("count") or 0)
    if reason == "delivery_limit":
        return (
            "DeliveryLimitExceeded",
            "the broker dead-lettered it after its delivery limit: it crashed or stalled "
            "the worker every time it was delivered",
            attempts,
        )
    return "BrokerDeadLettered", f"dead-lettered by the broker: {reason}", attempts


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class DeadLetterArchiver(ConsumerMixin):
    """Moves ``billsync.dead-letters`` into the ``dead_letters`` table (ack after commit)."""

    def __init__(
        self, connection: Connection, topology: Topology, sessions: sessionmaker[Session]
    ) -> None:
        self.connection = connection
        self._topology = topology
        self._sessions = sessions

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        return [
            Consumer(
                channel,
                queues=[self._topology.dead_letter_queue],
                on_message=self._on_message,
                prefetch_count=50,
            )
        ]

    def _on_message(self, message: Message) -> None:
        try:
            with self._sessions.begin() as session:
                row = archive(
                    session,
                    message.body,
                    dict(message.headers or {}),
                    message.delivery_info.get("routing_key", ""),
                )
                row_id, event_id = row.id, row.event_id
        except Exception:
            log.exception("could not archive a dead letter; it goes back to the queue")
            time.sleep(1)  # the database is likely down: do not spin
            message.requeue()
            return
        message.ack()
        log.info("dead letter archived", extra={"fields": {"id": row_id, "event_id": event_id}})

    def close(self) -> None:
        self.connection.release()
