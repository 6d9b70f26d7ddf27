"""The apply consumer: an adapter from the queue to ``apply_batch``.

Message outcomes (every delivery ends in exactly one):

- **ack** after the transaction that applied it committed, whatever it found
  (applied, stale, duplicate, or skipped for a deleted integration).
- **retry**: when applying fails, the batch is rolled back and its messages are
  tried one by one; a message that still fails stays unacked and is tried again
  after an exponential, jittered back-off (``retry_base_seconds`` doubling, capped
  at ``retry_max_seconds``), up to ``apply_max_attempts``.
- **dead-letter**: after the last attempt, or at once for a body that is not a
  valid ``QueueMessage`` (nothing is ever acked and dropped), the original body is
  republished to ``billsync.dead-letter`` with the error in its headers, and only
  acked once that publish was confirmed.
- **crash**: unacked messages are redelivered by the broker; a message that kills
  the worker every time is dead-lettered by the quorum queue's delivery limit.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kombu.connection import Connection
from kombu.mixins import ConsumerMixin
from kombu.transport.base import Message
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from worker.apply import Outcome, apply_batch
from worker.errors import BrokerUnavailable, PermanentError, UndecodableMessage
from worker.messaging.publisher import Publisher
from worker.messaging.topology import Topology
from worker.metrics import APPLY_SECONDS, EVENTS, count_outcomes
from worker.settings import Settings

__all__ = ["ApplyConsumer"]

log = logging.getLogger(__name__)

OutcomeListener = Callable[[Sequence[Outcome]], None]


@dataclass(order=True)
class _Held:
    """A failed message kept unacked until its next attempt is due."""

    due: float
    seq: int
    message: Message = field(compare=False)
    attempts: int = field(compare=False)
    first_failure: str = field(compare=False)


class ApplyConsumer(ConsumerMixin):
    """Consumes ``billsync.apply`` in batches; see the module docstring for outcomes."""

    def __init__(
        self,
        connection: Connection,
        topology: Topology,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        settings: Settings,
        *,
        on_outcomes: OutcomeListener | None = None,
    ) -> None:
        self.connection = connection
        self._topology = topology
        self._sessions = sessions
        self._publisher = publisher
        self._settings = settings
        self._on_outcomes = on_outcomes
        self._pending: list[Message] = []
        self._pending_since = 0.0
        self._held: list[_Held] = []
        self._seq = itertools.count()

    def close(self) -> None:
        """Release the broker connections (after ``run`` returned)."""
        self.connection.release()
        self._publisher.close()

    # kombu wiring -----------------------------------------------------------

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        return [
            consumer_cls(
                queues=[self._topology.apply_queue],
                on_message=self._receive,
                prefetch_count=self._settings.prefetch,
                accept=["json"],
            )
        ]

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        # kombu's default acks the message: that would lose it.
        self._dead_letter(message, UndecodableMessage(str(exc)), attempts=1)

    def on_consume_end(self, connection: Connection, channel: Any) -> None:
        # Unacked messages go back to the queue when the channel closes.
        self._pending.clear()
        self._held.clear()

    def consume(
        self,
        limit: int | None = None,
        timeout: float | None = None,
        safety_interval: float = 1,
        **kwargs: Any,
    ) -> Iterator[None]:
        """kombu's loop, but the wait is short while a batch is open, so it closes fast."""
        with self.consumer_context() as (conn, _channel, _consumers):
            for _ in range(limit) if limit else itertools.count():
                if self.should_stop:
                    break
                wait = 0.001 if self._pending else min(safety_interval, self._next_due())
                try:
                    conn.drain_events(timeout=wait)
                except TimeoutError:
                    conn.heartbeat_check()
                    self._flush()
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    if self._batch_due():
                        self._flush()
                self._retry_due()
                yield
            self._flush()

    # batching ---------------------------------------------------------------

    def _receive(self, message: Message) -> None:
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(message)

    def _batch_due(self) -> bool:
        if not self._pending:
            return False
        if len(self._pending) >= self._settings.batch_size:
            return True
        age_ms = (time.monotonic() - self._pending_since) * 1000
        return age_ms >= self._settings.batch_max_wait_ms

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        decoded: list[tuple[Message, QueueMessage]] = []
        for message in batch:
            try:
                decoded.append((message, QueueMessage.model_validate_json(message.body)))
            except ValidationError as exc:
                self._dead_letter(message, UndecodableMessage(_validation_summary(exc)), 1)
        if not decoded:
            return
        started = time.monotonic()
        try:
            outcomes = self._apply([qm for _, qm in decoded])
        except Exception:
            log.warning("batch of %d failed; applying one by one", len(decoded), exc_info=True)
            for message, queue_message in decoded:
                self._apply_alone(message, queue_message, attempts=1, first_failure=_now())
            return
        self._settle([m for m, _ in decoded], outcomes, started)

    def _apply(self, messages: Sequence[QueueMessage]) -> list[Outcome]:
        with self._sessions.begin() as session:
            return apply_batch(session, messages)

    def _settle(
        self, messages: Sequence[Message], outcomes: Sequence[Outcome], started: float
    ) -> None:
        """Ack after commit; then report the outcomes."""
        for message in messages:
            message.ack()
        elapsed = time.monotonic() - started
        APPLY_SECONDS.observe(elapsed)
        count_outcomes(outcomes)
        duration_ms = round(elapsed * 1000, 2)
        for outcome in outcomes:
            log.info(
                "event %s",
                outcome.status,
                extra={
                    "fields": {
                        "event_id": outcome.event_id,
                        "integration_id": outcome.integration_id,
                        "module": outcome.module,
                        "action": outcome.action,
                        "outcome": outcome.status,
                        "batch_size": len(outcomes),
                        "duration_ms": duration_ms,
                    }
                },
            )
        if self._on_outcomes is not None:
            self._on_outcomes(outcomes)

    # retries and dead letters ----------------------------------------------

    def _apply_alone(
        self, message: Message, queue_message: QueueMessage, attempts: int, first_failure: str
    ) -> None:
        started = time.monotonic()
        try:
            outcomes = self._apply([queue_message])
        except PermanentError as exc:
            self._dead_letter(message, exc, attempts, first_failure)
        except Exception as exc:
            if attempts >= self._settings.apply_max_attempts:
                self._dead_letter(message, exc, attempts, first_failure)
            else:
                self._hold(message, attempts, first_failure)
        else:
            self._settle([message], outcomes, started)

    def _hold(self, message: Message, attempts: int, first_failure: str) -> None:
        base = self._settings.retry_base_seconds * (2 ** (attempts - 1))
        delay = min(self._settings.retry_max_seconds, base) * random.uniform(0.5, 1.0)
        heapq.heappush(
            self._held,
            _Held(time.monotonic() + delay, next(self._seq), message, attempts, first_failure),
        )

    def _next_due(self) -> float:
        if not self._held:
            return float("inf")
        return max(0.001, self._held[0].due - time.monotonic())

    def _retry_due(self) -> None:
        now = time.monotonic()
        while self._held and self._held[0].due <= now:
            held = heapq.heappop(self._held)
            try:
                queue_message = QueueMessage.model_validate_json(held.message.body)
            except ValidationError as exc:
                self._dead_letter(held.message, UndecodableMessage(str(exc)), held.attempts)
                continue
            self._apply_alone(held.message, queue_message, held.attempts + 1, held.first_failure)

    def _dead_letter(
        self, message: Message, exc: BaseException, attempts: int, first_failure: str = ""
    ) -> None:
        now = _now()
        headers = dict(message.headers or {})
        headers.update(
            {
                "x-billsync-error-class": type(exc).__name__,
                "x-billsync-error-message": str(exc)[:2000],
                "x-billsync-traceback": "".join(traceback.format_exception(exc))[-8000:],
                "x-billsync-attempts": attempts,
                "x-billsync-first-failure": first_failure or now,
                "x-billsync-last-failure": now,
                "x-billsync-original-routing-key": message.delivery_info.get("routing_key", ""),
            }
        )
        try:
            self._publisher.publish_dead_letter(
                message.body,
                routing_key=message.delivery_info.get("routing_key") or "unknown",
                headers=headers,
            )
        except BrokerUnavailable:
            log.error("could not dead-letter %s; keeping it for later", headers.get("event-id"))
            self._hold(message, attempts, first_failure or now)
            return
        message.ack()
        EVENTS.labels(str(headers.get("module", "unknown")), "dead_lettered").inc()
        log.error(
            "event dead-lettered after %d attempt(s): %s: %s",
            attempts,
            type(exc).__name__,
            exc,
            extra={"fields": {"event_id": headers.get("event-id"), "outcome": "dead_lettered"}},
        )


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
