"""The apply consumer: an adapter from the queue to ``apply_batch``.

Message outcomes (every delivery ends in exactly one):

- **ack** after the transaction that applied it committed, whatever it found
  (applied, stale, duplicate, or skipped for a deleted integration).
- **apply again at once**: when another transaction held what the batch needed (a
  deadlock, a serialization failure, a lock that stayed busy:
  ``worker.db.session.is_contention``), the batch is kept whole and unacked and is
  the next one applied; no attempt is spent, and hooks hear ``on_batch_conflict``.
- **wait for the database**: when applying fails because the database could not do
  the work (unreachable, connection lost, lock or statement timeout:
  ``worker.db.session.is_unavailable``, or any failure while a ``SELECT 1`` probe
  fails too), the whole batch is kept unacked and no new batch is started; the
  database is probed with a capped, doubling back-off and the batch is applied again
  once it answers. No event spends an attempt on this and none is dead-lettered for
  it; at most ``prefetch`` messages wait. Hooks hear of it when it starts and, with its
  duration, when the first transaction commits again.
- **retry**: when applying fails otherwise, the batch is rolled back and bisected: each
  half is applied in a transaction of its own, and a half that fails is halved again,
  so the events that fail are found in about 2·log₂(batch) transactions while the rest
  is applied (and acked) with its half. A message that fails on its own stays unacked
  and is tried again after an exponential, jittered back-off (``retry_base_seconds``
  doubling, capped at ``retry_max_seconds``), up to ``apply_max_attempts``: only
  failures of the event itself count.
- **dead-letter**: after the last attempt, or at once for a body that is not a
  valid ``QueueMessage`` (nothing is ever acked and dropped), the original body is
  republished to ``billsync.dead-letter`` with the error in its headers, and only
  acked once that publish was confirmed.
- **crash**: unacked messages are redelivered by the broker; a message that kills
  the worker every time is dead-lettered by the quorum queue's delivery limit.
- **stop** (``should_stop``, SIGTERM): no new delivery is asked for (``basic.cancel``),
  the batch in hand is finished and what was received since is applied, batch after
  batch, and acked; so nothing goes back to the queue but what waits for a retry, or
  everything received while the database is out.

Delivery is at least once; the processed-event ledger makes the effect exactly once
(see ``worker.sync.apply``), so a batch applied again after a lost commit reply is a
no-op for what did commit. A committed batch is acked with one ``basic.ack`` of its
highest delivery tag with ``multiple`` (on AMQP), unless a delivery below that tag is
still unacked (held for a retry, or not applied yet): what it would cover is acked one
by one instead, so nothing is ever acked before its transaction committed.

One batch is applied at a time, in a transaction on an applier thread, while this
thread goes on reading (and decoding) the next batch from the broker (up to
``prefetch`` messages are unacked); everything else — acks, dead letters, retries,
bisection, outages — happens here, once the transaction is over, exactly as if it had
run inline. Statistics of the tables the batches grew are refreshed on a thread of
their own (``worker.sync.refresh_statistics``).

Decoding: every body on the queue was made by billsync (gateway, pull, replay) from a
validated ``QueueMessage``, so it is read under ``schemas.payloads.TRUSTED``, which
skips only re-normalising e-mail addresses (two thirds of reading a time log). A body
that this reading refuses, and a replayed one (an operator may have edited it), is
validated in full, and a refusal is that validation's, as it always was.

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
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
from schemas.payloads import TRUSTED
from worker.db import database_reachable, is_contention, is_unavailable
from worker.errors import BrokerUnavailable, PermanentError, UndecodableMessage
from worker.messaging.hooks import HookChain, Hooks
from worker.messaging.publisher import Publisher
from worker.messaging.topology import Topology
from worker.settings import Settings
from worker.sync import Outcome, apply_batch, refresh_statistics

__all__ = ["ApplyConsumer", "decode"]


@dataclass(order=True)
class _Held:
    """A failed message kept unacked until its next attempt is due."""

    due: float
    seq: int
    message: Message = field(compare=False)
    attempts: int = field(compare=False)  # attempts already spent
    first_failure: str = field(compare=False)


@dataclass
class _InFlight:
    """A batch handed to the applier thread, and when."""

    future: Future[list[Outcome]]
    decoded: list[tuple[Message, QueueMessage]]
    started: float


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
        # Delivery tags received and not acked yet (a multiple ack must not cover them).
        self._unacked: set[int] = set()
        # The batch being applied (one at a time) on the applier thread: meanwhile this
        # thread reads the next batch from the broker, instead of after the commit.
        self._applier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="billsync-apply")
        self._in_flight: _InFlight | None = None
        # Bodies decoded as they arrive (meanwhile, not between two batches), by tag.
        self._decoded: dict[int, QueueMessage | ValidationError] = {}
        # ANALYZE of what the batches grew runs beside them, not between two batches.
        self._analyzer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="billsync-analyze")
        self._analyzing: Future[list[str]] | None = None

    def close(self) -> None:
        """Release the broker connections (after ``run`` returned)."""
        self._applier.shutdown(wait=True)
        self._analyzer.shutdown(wait=True)
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
        self._unacked.add(message.delivery_tag)
        self._dead_letter(message, UndecodableMessage(str(exc)), attempts=1)

    def on_consume_end(self, connection: Connection, channel: Any) -> None:
        # Unacked messages go back to the queue when the channel closes; a batch being
        # applied may still commit (its redelivery is then found duplicate).
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            wait([in_flight.future])
        self._pending.clear()
        self._held.clear()
        self._unacked.clear()
        self._decoded.clear()

    def consume(
        self,
        limit: int | None = None,
        timeout: float | None = None,
        safety_interval: float = 1,
        **kwargs: Any,
    ) -> Iterator[None]:
        """kombu's loop, but the wait is short while a batch is open, so it closes fast."""
        with self.consumer_context() as (conn, _channel, consumers):
            for _ in range(limit) if limit else itertools.count():
                if self.should_stop:
                    break
                try:
                    conn.drain_events(timeout=self._wait(safety_interval))
                except TimeoutError:
                    conn.heartbeat_check()
                    self._collect()
                    self._flush()
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    self._collect()
                    if self._batch_due():
                        self._flush()
                self._retry_due()
                yield
            if self.should_stop:
                self._take_no_more(consumers)
            self._apply_what_was_received()

    def _take_no_more(self, consumers: Sequence[Any]) -> None:
        """Stopping: ask the broker for no more deliveries. What it sent before it heard
        (``basic.cancel`` waits for its ``cancel-ok``) is received meanwhile, and applied."""
        for consumer in consumers:
            try:
                consumer.cancel()
            except Exception:  # the connection is gone: its deliveries went back already
                return

    def _apply_what_was_received(self) -> None:
        """Stopping: finish the batch in hand, then apply what was received, batch after
        batch, so that nothing goes back to the queue to be delivered again (a needless
        redelivery, and a step towards the quorum queue's delivery limit). Bounded by
        ``prefetch``; what waits for a retry, and everything while the database is out,
        is left unacked and goes back to the queue."""
        while True:
            self._collect(block=True)
            waiting = len(self._pending)
            self._flush()
            if self._in_flight is None and len(self._pending) in (0, waiting):
                return  # all applied, or the database is out

    def _wait(self, safety_interval: float) -> float:
        """How long to wait for the broker: short while a batch is open, unless the
        database is down, then until the next probe."""
        outage = self._outage
        if outage is not None and not outage.reachable:
            return max(0.001, min(safety_interval, outage.due - time.monotonic()))
        if self._pending or self._in_flight is not None:
            return 0.001
        return min(safety_interval, self._next_due())

    # batching ---------------------------------------------------------------

    def _receive(self, message: Message) -> None:
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(message)
        self._unacked.add(message.delivery_tag)
        self._decoded[message.delivery_tag] = _decoded(message.body)

    def _batch_due(self) -> bool:
        if not self._pending:
            return False
        if len(self._pending) >= self._settings.batch_size:
            return True
        age_ms = (time.monotonic() - self._pending_since) * 1000
        return age_ms >= self._settings.batch_max_wait_ms

    def _flush(self) -> None:
        """Start applying the next batch, unless one is being applied."""
        if self._in_flight is not None or not self._pending or not self._database_ready():
            return
        size = self._settings.batch_size
        batch, self._pending = self._pending[:size], self._pending[size:]
        decoded: list[tuple[Message, QueueMessage]] = []
        for message in batch:
            result = self._decoded.pop(message.delivery_tag, None)
            if result is None:  # put back after a failure: decoded again
                result = _decoded(message.body)
            if isinstance(result, ValidationError):
                self._dead_letter(message, UndecodableMessage(_validation_summary(result)), 1)
            else:
                decoded.append((message, result))
        if not decoded:
            return
        future = self._applier.submit(self._apply, [qm for _, qm in decoded])
        self._in_flight = _InFlight(future, decoded, time.monotonic())

    def _collect(self, *, block: bool = False) -> None:
        """Settle the batch being applied once it is done (``block``: wait for it).

        Everything but the transaction itself happens on this thread: acks and dead
        letters on the broker's channel, retries, bisection and outages, as before.
        """
        in_flight = self._in_flight
        if in_flight is None or not (block or in_flight.future.done()):
            return
        self._in_flight = None
        decoded, started = in_flight.decoded, in_flight.started
        try:
            outcomes = in_flight.future.result()
        except Exception as exc:
            if is_contention(exc) or self._unavailable(exc):
                # Kept whole and unacked, ahead of what arrived since: retried as a batch.
                self._pending = [m for m, _ in decoded] + self._pending
                self._held_back([qm for _, qm in decoded], exc)
                return
            self._hooks.on_batch_failed([qm for _, qm in decoded], exc)
            self._bisect(decoded)
            return
        self._recovered()
        self._settle(decoded, outcomes, started)

    def _bisect(self, failed: list[tuple[Message, QueueMessage]]) -> None:
        """Find the events of a failed batch that fail on their own, by halves.

        Each half is applied in a transaction of its own: one that commits is settled
        (acked); one that fails is halved again, down to single events, which are then
        retried and dead-lettered as an event applied alone always was (the failed
        transaction of a single event was its first attempt). One poison event among
        200 costs about 2·log₂(200) = 16 transactions instead of 200. A batch of one is
        applied alone once more, as before. Halves go first to last, in arrival order.
        """
        first_failure = _now()
        if len(failed) == 1:
            message, queue_message = failed[0]
            self._apply_alone(message, queue_message, attempts=1, first_failure=first_failure)
            return
        todo = _halves(failed)
        while todo:
            group = todo.pop()
            if self._outage is not None and not self._outage.reachable:
                self._wait_as_batch([group, *reversed(todo)])
                return
            started = time.monotonic()
            try:
                outcomes = self._apply([qm for _, qm in group])
            except Exception as exc:
                if len(group) == 1:
                    message, _ = group[0]
                    self._failed_alone(message, exc, attempts=1, first_failure=first_failure)
                elif is_contention(exc) or self._unavailable(exc):
                    self._held_back([qm for _, qm in group], exc)
                    self._wait_as_batch([group, *reversed(todo)])
                    return
                else:
                    todo += _halves(group)
            else:
                self._recovered()
                self._settle(group, outcomes, started)

    def _wait_as_batch(self, groups: list[list[tuple[Message, QueueMessage]]]) -> None:
        """The database went away: the untried rest waits, unacked, as a batch."""
        self._pending = [m for group in groups for m, _ in group] + self._pending

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
        self._ack([m for m, _ in messages])
        # Once in a while, after a commit: ANALYZE the tables the batches grew.
        if self._analyzing is None or self._analyzing.done():
            self._analyzing = self._analyzer.submit(refresh_statistics, self._sessions.begin)

    def _ack(self, messages: Sequence[Message]) -> None:
        """Ack committed deliveries: those below every other unacked delivery tag with one
        multiple ack of the highest of them (AMQP), the rest one by one."""
        tags = {m.delivery_tag for m in messages}
        self._unacked -= tags
        if self.connection.transport.driver_type != "amqp":  # the embedded transport's
            for message in messages:  # basic_ack ignores ``multiple``
                message.ack()
            return
        below = min(self._unacked, default=None)
        covered = [m for m in messages if below is None or m.delivery_tag < below]
        if covered:
            max(covered, key=lambda m: m.delivery_tag).ack(multiple=True)
        for message in messages:
            if below is not None and message.delivery_tag > below:
                message.ack()

    # retries ----------------------------------------------------------------

    def _apply_alone(
        self, message: Message, queue_message: QueueMessage, attempts: int, first_failure: str
    ) -> None:
        started = time.monotonic()
        try:
            outcomes = self._apply([queue_message])
        except Exception as exc:
            self._failed_alone(message, exc, attempts, first_failure)
        else:
            self._recovered()
            self._settle([(message, queue_message)], outcomes, started)

    def _failed_alone(
        self, message: Message, exc: Exception, attempts: int, first_failure: str
    ) -> None:
        """Applying ``message`` on its own failed at attempt ``attempts``."""
        if isinstance(exc, PermanentError):
            self._dead_letter(message, exc, attempts, first_failure)
        elif self._unavailable(exc):
            self._enter_outage(exc)
            self._hold(message, attempts - 1, first_failure)  # this attempt is not spent
        elif attempts >= self._settings.apply_max_attempts:
            self._dead_letter(message, exc, attempts, first_failure)
        else:
            delay = self._hold(message, attempts, first_failure)
            self._hooks.on_retry(message, exc, attempts, delay)

    def _hold(self, message: Message, attempts: int, first_failure: str) -> float:
        """Keep ``message`` unacked until its next attempt; ``attempts`` were spent.
        Returns the seconds until then."""
        base: float = self._settings.retry_base_seconds * (2 ** max(0, attempts - 1))
        delay = min(self._settings.retry_max_seconds, base) * random.uniform(0.5, 1.0)
        self._unacked.add(message.delivery_tag)  # (an undecodable one never was received)
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
        if self._in_flight is not None:
            return  # after the batch being applied
        now = time.monotonic()
        while self._held and self._held[0].due <= now:
            if not self._database_ready():
                return
            held = heapq.heappop(self._held)
            try:
                queue_message = decode(held.message.body)
            except ValidationError as exc:
                self._dead_letter(held.message, UndecodableMessage(str(exc)), held.attempts)
                continue
            self._apply_alone(held.message, queue_message, held.attempts + 1, held.first_failure)

    # database outages -------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> bool:
        """The failure is the database's, not the events': known transient errors, and
        anything else while the database does not even answer a probe."""
        return is_unavailable(exc) or not database_reachable(self._sessions)

    def _held_back(self, messages: Sequence[QueueMessage], exc: BaseException) -> None:
        """A batch failed for the database's sake, not its events': a conflict with
        another transaction is tried again at once (the other has committed or rolled
        back by now); anything else is an outage, waited out."""
        if is_contention(exc):
            self._hooks.on_batch_conflict(messages, exc)
        else:
            self._enter_outage(exc)

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
        self._ack([message])
        self._hooks.on_dead_letter(message, exc, attempts)


def decode(body: bytes | str) -> QueueMessage:
    """A queue message from its body (see the module docstring): read as trusted,
    else, and for a replay, validated in full. Raises the full validation's error."""
    escaped_nul = b"\\u0000" in body if isinstance(body, bytes) else "\\u0000" in body
    if escaped_nul:
        # JSON holds a NUL only escaped: the full validation refuses it where it is.
        return QueueMessage.model_validate_json(body)
    try:
        decoded = QueueMessage.model_validate_json(body, context=TRUSTED)
    except ValidationError:
        return QueueMessage.model_validate_json(body)
    if decoded.source == "replay":
        return QueueMessage.model_validate_json(body)
    return decoded


def _decoded(body: bytes | str) -> QueueMessage | ValidationError:
    try:
        return decode(body)
    except ValidationError as exc:
        return exc


def _halves(
    group: list[tuple[Message, QueueMessage]],
) -> list[list[tuple[Message, QueueMessage]]]:
    """The two halves of ``group``, the first last (it is popped first)."""
    middle = len(group) // 2
    return [group[middle:], group[:middle]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
