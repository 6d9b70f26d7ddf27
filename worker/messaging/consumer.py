"""The apply consumer: an adapter from the queue to ``apply_batch``.

Message outcomes (every delivery ends in exactly one):

- **ack** after the transaction that applied it committed, whatever it found
  (applied, stale, duplicate, or skipped for a deleted integration).
- **wait for the database**: when applying fails because the database could not do
  the work (unreachable, connection lost, lock or statement timeout, deadlock:
  ``worker.db.session.is_unavailable``, or any failure while a ``SELECT 1`` probe
  fails too), the whole batch is kept unacked and no new batch is started; the
  database is probed with a capped, doubling back-off and the batch is applied again
  once it answers. No event spends an attempt on this and none is dead-lettered for
  it; at most ``prefetch`` messages wait. Hooks hear of it when it starts and, with its
  duration, when the first transaction commits again.
- **retry**: when applying fails otherwise, the batch is rolled back and its messages
  are tried one by one; a message that still fails stays unacked and is tried again
  after an exponential, jittered back-off (``retry_base_seconds`` doubling, capped
  at ``retry_max_seconds``), up to ``apply_max_attempts``: only failures of the event
  itself count.
- **dead-letter**: after the last attempt, or at once for a body that is not a
  valid ``QueueMessage`` (nothing is ever acked and dropped), the original body is
  republished to ``billsync.dead-letter`` with the error in its headers, and only
  acked once that publish was confirmed.
- **crash**: unacked messages are redelivered by the broker; a message that kills
  the worker every time is dead-lettered by the quorum queue's delivery limit.

Delivery is at least once; the processed-event ledger makes the effect exactly once
(see ``worker.sync.apply``), so a batch applied again after a lost commit reply is a
no-op for what did commit.

The consumer counts and logs nothing itself: it tells its hooks
(``worker.messaging.hooks``), and whoever builds it installs the ones that do.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kombu.connection import Connection
from kombu.mixins import ConsumerMixin
from kombu.transport.base import Message
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from schemas.headers import (
    ATTEMPTS_HEADER,
    ERROR_CLASS_HEADER,
    ERROR_MESSAGE_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_FAILURE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    TRACEBACK_HEADER,
)
from worker.db import database_reachable, is_unavailable
from worker.errors import BrokerUnavailable, PermanentError, UndecodableMessage
from worker.messaging.hooks import HookChain, Hooks
from worker.messaging.publisher import Publisher
from worker.messaging.topology import Topology
from worker.settings import Settings
from worker.sync import Outcome, apply_batch

__all__ = ["ApplyConsumer"]


@dataclass(order=True)
class _Held:
    """A failed message kept unacked until its next attempt is due."""

    due: float
    seq: int
    message: Message = field(compare=False)
    attempts: int = field(compare=False)  # attempts already spent
    first_failure: str = field(compare=False)


@dataclass
class _Outage:
    """The database could not do the work: nothing is applied until a probe answers."""

    since: float
    cause: str
    delay: float
    due: float
    reachable: bool = False  # a probe answered; the next transaction may go


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
        hooks: Sequence[Hooks] = (),
    ) -> None:
        self.connection = connection
        self._topology = topology
        self._sessions = sessions
        self._publisher = publisher
        self._settings = settings
        self._hooks = HookChain(hooks)
        self._pending: list[Message] = []
        self._pending_since = 0.0
        self._held: list[_Held] = []
        self._seq = itertools.count()
        self._outage: _Outage | None = None

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
                wait = self._wait(safety_interval)
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

    def _wait(self, safety_interval: float) -> float:
        """How long to wait for the broker: short while a batch is open, unless the
        database is down, then until the next probe."""
        outage = self._outage
        if outage is not None and not outage.reachable:
            return max(0.001, min(safety_interval, outage.due - time.monotonic()))
        if self._pending:
            return 0.001
        return min(safety_interval, self._next_due())

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
        if not self._pending or not self._database_ready():
            return
        size = self._settings.batch_size
        batch, self._pending = self._pending[:size], self._pending[size:]
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
        except Exception as exc:
            if self._unavailable(exc):
                # Kept whole and unacked, ahead of what arrived since: retried as a batch.
                self._pending = [m for m, _ in decoded] + self._pending
                self._enter_outage(exc)
                return
            self._hooks.on_batch_failed([qm for _, qm in decoded], exc)
            for index, (message, queue_message) in enumerate(decoded):
                if self._outage is not None and not self._outage.reachable:
                    # The database went away meanwhile: the untried rest waits as a batch.
                    self._pending = [m for m, _ in decoded[index:]] + self._pending
                    return
                self._apply_alone(message, queue_message, attempts=1, first_failure=_now())
            return
        self._recovered()
        self._settle(decoded, outcomes, started)

    def _apply(self, messages: Sequence[QueueMessage]) -> list[Outcome]:
        self._hooks.before_apply(messages)
        with self._sessions.begin() as session:
            return apply_batch(session, messages)

    def _settle(
        self,
        messages: Sequence[tuple[Message, QueueMessage]],
        outcomes: Sequence[Outcome],
        started: float,
    ) -> None:
        """Committed: tell the hooks, then ack."""
        elapsed = time.monotonic() - started
        self._hooks.after_apply([qm for _, qm in messages], outcomes, elapsed)
        for message, _ in messages:
            message.ack()

    # retries ----------------------------------------------------------------

    def _apply_alone(
        self, message: Message, queue_message: QueueMessage, attempts: int, first_failure: str
    ) -> None:
        started = time.monotonic()
        try:
            outcomes = self._apply([queue_message])
        except PermanentError as exc:
            self._dead_letter(message, exc, attempts, first_failure)
        except Exception as exc:
            if self._unavailable(exc):
                self._enter_outage(exc)
                self._hold(message, attempts - 1, first_failure)  # this attempt is not spent
            elif attempts >= self._settings.apply_max_attempts:
                self._dead_letter(message, exc, attempts, first_failure)
            else:
                delay = self._hold(message, attempts, first_failure)
                self._hooks.on_retry(message, exc, attempts, delay)
        else:
            self._recovered()
            self._settle([(message, queue_message)], outcomes, started)

    def _hold(self, message: Message, attempts: int, first_failure: str) -> float:
        """Keep ``message`` unacked until its next attempt; ``attempts`` were spent.
        Returns the seconds until then."""
        base: float = self._settings.retry_base_seconds * (2 ** max(0, attempts - 1))
        delay = min(self._settings.retry_max_seconds, base) * random.uniform(0.5, 1.0)
        heapq.heappush(
            self._held,
            _Held(time.monotonic() + delay, next(self._seq), message, attempts, first_failure),
        )
        return delay

    def _next_due(self) -> float:
        if not self._held:
            return float("inf")
        return max(0.001, self._held[0].due - time.monotonic())

    def _retry_due(self) -> None:
        now = time.monotonic()
        while self._held and self._held[0].due <= now:
            if not self._database_ready():
                return
            held = heapq.heappop(self._held)
            try:
                queue_message = QueueMessage.model_validate_json(held.message.body)
            except ValidationError as exc:
                self._dead_letter(held.message, UndecodableMessage(str(exc)), held.attempts)
                continue
            self._apply_alone(held.message, queue_message, held.attempts + 1, held.first_failure)

    # database outages -------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> bool:
        """The failure is the database's, not the events': known transient errors, and
        anything else while the database does not even answer a probe."""
        return is_unavailable(exc) or not database_reachable(self._sessions)

    def _enter_outage(self, exc: BaseException | None) -> None:
        """Start an outage, or back off further in the current one."""
        now = time.monotonic()
        cap = min(self._settings.retry_max_seconds, self._settings.db_outage_probe_max_seconds)
        outage = self._outage
        starting = outage is None
        if outage is None:
            cause = f"{type(exc).__name__}: {exc}"[:500] if exc is not None else "unknown"
            delay = min(cap, self._settings.retry_base_seconds)
            outage = self._outage = _Outage(since=now, cause=cause, delay=delay, due=now)
        else:
            outage.delay = min(cap, max(outage.delay * 2, self._settings.retry_base_seconds))
        outage.due = now + outage.delay * random.uniform(0.5, 1.0)
        outage.reachable = False
        if starting:
            self._hooks.on_database_outage(outage.cause)

    def _database_ready(self) -> bool:
        """May a transaction be tried now? During an outage: once the back-off has passed
        and a probe answered."""
        outage = self._outage
        if outage is None or outage.reachable:
            return True
        if time.monotonic() < outage.due:
            return False
        if database_reachable(self._sessions):
            outage.reachable = True
            return True
        self._enter_outage(None)
        return False

    def _recovered(self) -> None:
        """A transaction committed: an outage in progress is over (logged once, here)."""
        outage, self._outage = self._outage, None
        if outage is None:
            return
        self._hooks.on_database_recovered(time.monotonic() - outage.since, outage.cause)

    # dead letters -----------------------------------------------------------

    def _dead_letter(
        self, message: Message, exc: BaseException, attempts: int, first_failure: str = ""
    ) -> None:
        now = _now()
        headers = dict(message.headers or {})
        headers.update(
            {
                ERROR_CLASS_HEADER: type(exc).__name__,
                ERROR_MESSAGE_HEADER: str(exc)[:2000],
                TRACEBACK_HEADER: "".join(traceback.format_exception(exc))[-8000:],
                ATTEMPTS_HEADER: attempts,
                FIRST_FAILURE_HEADER: first_failure or now,
                LAST_FAILURE_HEADER: now,
                ORIGINAL_ROUTING_KEY_HEADER: message.delivery_info.get("routing_key", ""),
            }
        )
        try:
            self._publisher.publish_dead_letter(
                message.body,
                routing_key=message.delivery_info.get("routing_key") or "unknown",
                headers=headers,
            )
        except BrokerUnavailable as unpublished:
            self._hold(message, attempts, first_failure or now)
            self._hooks.on_dead_letter_failed(message, unpublished)
            return
        message.ack()
        self._hooks.on_dead_letter(message, exc, attempts)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
