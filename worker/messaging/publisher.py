"""Durable publishing: persistent messages, publisher confirms, bounded retries.

Used by the gateway (inside a request, so nothing here may block for long: kombu
retries forever unless told otherwise), by the worker to dead-letter, and by pull
sync and replay.

Change events on RabbitMQ go through one publishing thread per process (``_Pipeline``):
it owns a confirm-mode channel, publishes what concurrent callers hand it back to back
and hands each caller its own confirms, so a request pays no broker round trip of its
own (waiting for each confirm before the next publish made the broker's round trip
the gateway's ceiling). ``publish`` still returns only once the broker confirmed every
message it was given.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from amqp import Message, spec
from amqp.serialization import dumps
from kombu.connection import Connection
from kombu.entity import Exchange

from schemas import QueueMessage, queue_message_adapter, routing_key
from worker.errors import BrokerUnavailable
from worker.messaging.connection import broker_connection
from worker.messaging.topology import Topology, declare_topology
from worker.settings import Settings

__all__ = ["Publisher"]

_Item = tuple[bytes | str, str, dict[str, Any], str | None]

log = logging.getLogger(__name__)

PERSISTENT = 2

_RECV_BYTES = 65536


class Publisher:
    """Publishes to the broker with publisher confirms.

    ``publish`` returns only after the broker confirmed every message, and raises
    ``BrokerUnavailable`` once the configured retries and timeouts are spent. Change
    events on RabbitMQ go through this process's publishing thread (started at the
    first publish, so a process forked after ``__init__``, as gunicorn's workers are,
    starts its own); dead letters, the embedded transport and the broker checks use a
    small pool of connections.
    """

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self._settings = settings
        self._topology = topology
        self._connection = broker_connection(settings)
        self._pool = self._connection.Pool(limit=settings.publish_pool_size)
        self._pipeline: _Pipeline | None = None
        # Held only while a pipeline starts (in the process that publishes).
        self._pipeline_lock = threading.Lock()

    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def in_flight(self) -> int:
        """Messages this process published and the broker has not confirmed yet."""
        pipeline = self._pipeline
        return pipeline.in_flight if pipeline is not None else 0

    def declare_topology(self) -> None:
        """Declare exchanges and queues now (the gateway does this at start)."""
        with self._acquire() as connection:
            declare_topology(connection, self._topology)

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        """Publish change events to ``billsync.events``; all confirmed or raise.

        Each body is serialized once, to bytes, here in the caller's thread.
        """
        if not messages:
            return
        items: list[_Item] = [
            (queue_message_adapter.dump_json(m), routing_key(m), m.headers(), m.event_id)
            for m in messages
        ]
        if self._settings.is_embedded_broker:
            self._publish_many(self._topology.events, items)
        else:
            self._publish_pipelined(self._topology.events.name, items)

    def publish_dead_letter(
        self, body: bytes | str, *, routing_key: str, headers: dict[str, Any]
    ) -> None:
        """Publish a dead letter (the original body, the error in headers); confirmed."""
        self._publish_many(
            self._topology.dead_letter_exchange, [(body, routing_key, headers, None)]
        )

    def queue_depth(self, queue: str) -> int | None:
        """Messages ready in ``queue`` now, or None when the broker cannot be asked."""
        try:
            with self._acquire() as connection:
                declared = connection.default_channel.queue_declare(queue=queue, passive=True)
                return int(declared.message_count)
        except Exception as exc:  # broker down, queue not declared yet: unknown, not zero
            log.info("queue depth of %s unknown: %s", queue, exc)
            return None

    def ping(self) -> bool:
        """True when a broker connection can be had right now (for /readyz)."""
        try:
            with self._acquire() as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except BrokerUnavailable:
            return False

    def close(self) -> None:
        with self._pipeline_lock:
            pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None and pipeline.pid == os.getpid():
            pipeline.stop()
        self._pool.force_close_all()
        self._connection.release()

    def _publish_pipelined(self, exchange: str, items: Sequence[_Item]) -> None:
        """Hand ``items`` to the publishing thread and wait for their confirms.

        A lost connection is retried on a new one, up to ``publish_max_retries`` times
        (the whole request again: duplicates are harmless, the consumer dedupes on event
        ids; losses are not). A nack is not retried: the broker refused the message (a
        full queue), and asking again at once would be refused the same way.
        """
        settings = self._settings
        for attempt in range(settings.publish_max_retries + 1):
            if attempt:
                time.sleep(min(0.25 * (attempt - 1), 1.0))
            request = _Request(exchange, items)
            try:
                self._running_pipeline().publish(request)
                return
            except _NotConfirmed as exc:
                log.warning("publish not confirmed: %s", exc)
                if not exc.retry or attempt == settings.publish_max_retries:
                    raise BrokerUnavailable(f"broker did not confirm the publish: {exc}") from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _running_pipeline(self) -> _Pipeline:
        pipeline = self._pipeline
        if pipeline is None or not pipeline.serving():
            with self._pipeline_lock:
                pipeline = self._pipeline
                if pipeline is None or not pipeline.serving():
                    # None yet, this is a forked child (the parent's thread is not
                    # here), or its thread ended: start one.
                    pipeline = self._pipeline = _Pipeline(self._settings, self._topology)
        return pipeline

    def _publish_many(
        self,
        exchange: Exchange,
        items: Sequence[_Item],
    ) -> None:
        settings = self._settings
        with self._acquire() as connection:
            producer = connection.Producer()
            publish = connection.ensure(
                producer,
                producer.publish,
                max_retries=settings.publish_max_retries,
                interval_start=0,
                interval_step=0.25,
                interval_max=1,
            )
            declare = [self._topology.apply_queue, self._topology.dead_letter_queue]
            try:
                for body, key, headers, message_id in items:
                    publish(
                        body,
                        exchange=exchange,
                        routing_key=key,
                        headers=headers,
                        delivery_mode=PERSISTENT,
                        content_type="application/json",
                        content_encoding="utf-8",
                        message_id=message_id,
                        declare=declare,
                        confirm_timeout=settings.publish_confirm_timeout_seconds,
                        timeout=settings.publish_confirm_timeout_seconds,
                    )
            except Exception as exc:
                # The channel may be mid-confirm; drop it so the next use reconnects.
                connection.collect()
                log.warning("publish failed: %s: %s", type(exc).__name__, exc)
                raise BrokerUnavailable(f"broker did not confirm the publish: {exc}") from exc

    @contextmanager
    def _acquire(self) -> Iterator[Connection]:
        try:
            connection = self._pool.acquire(
                block=True, timeout=self._settings.publish_confirm_timeout_seconds
            )
        except Exception as exc:
            raise BrokerUnavailable(f"no broker connection available: {exc}") from exc
        try:
            try:
                connection.ensure_connection(
                    max_retries=self._settings.publish_max_retries,
                    interval_start=0,
                    interval_step=0.25,
                    interval_max=1,
                )
            except Exception as exc:
                connection.collect()
                raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
            yield connection
        finally:
            connection.release()


def _holds_a_frame(buffer: bytes) -> bool:
    """Whether ``buffer`` starts with a whole AMQP frame: a 7-byte header (type, channel,
    payload size), the payload, and the frame-end octet."""
    return len(buffer) >= 7 and len(buffer) >= 8 + int.from_bytes(buffer[3:7], "big")


class _NotConfirmed(BrokerUnavailable):
    """A request's messages were not all confirmed; ``retry``: worth another connection."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class _Request:
    """One caller's messages, handed to the publishing thread; settled once, by it.

    ``done`` once every message was acked (``error`` None) or the request failed
    (``error`` says why); the caller waits on ``settled``, a lock held until then (a
    bare lock: an Event allocates a condition and a lock per wait). The caller only
    ever sets ``abandoned``.
    """

    __slots__ = ("abandoned", "done", "error", "exchange", "items", "settled", "unconfirmed")

    def __init__(self, exchange: str, items: Sequence[_Item]) -> None:
        self.exchange = exchange
        self.items = items
        self.unconfirmed = len(items)
        self.error: _NotConfirmed | None = None
        self.done = False
        self.settled = threading.Lock()
        self.settled.acquire()
        self.abandoned = False

    def acked(self) -> None:
        self.unconfirmed -= 1
        if self.unconfirmed == 0 and not self.done:
            self.done = True
            self.settled.release()

    def fail(self, error: _NotConfirmed) -> None:
        if not self.done:
            self.error = error
            self.done = True
            self.settled.release()


class _Pipeline:
    """A thread that owns one confirm-mode connection and publishes for every caller.

    Callers queue requests and wake the thread through a pipe if it sleeps; the thread
    waits on that pipe and the broker's socket at once, so it publishes whatever is
    queued back to back while earlier messages await their confirms, and reads the acks
    and nacks (each may cover many delivery tags at once, ``multiple``) as they come. Each
    delivery tag maps to its request, so a nack or a lost connection fails exactly the
    requests it concerns. Only this thread touches the connection (py-amqp is not
    thread-safe).

    Bounds: a message not confirmed within the confirm timeout, or a socket write that
    blocks that long, counts as a lost connection; connecting is bounded by the connect
    timeout; a dropped connection is seen as soon as the socket says so, even idle, and
    heartbeats find a silent one.
    """

    # Messages published before looking at the socket again, so that a large batch
    # (a pull's) does not leave the broker's confirms unread until its end.
    READ_EVERY = 256

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self.pid = os.getpid()
        self._settings = settings
        self._topology = topology
        self._confirm_timeout = settings.publish_confirm_timeout_seconds
        self._lock = threading.Lock()
        self._queue: deque[_Request] = deque()
        self._stopping = False
        # True while the thread waits (or is about to) with nothing queued: only then
        # does a caller need to wake it (a system call, and a thread switch).
        self._sleeping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        # Counts what the thread did (published, confirmed, connected or failed): a
        # caller whose wait sees it stand still knows the thread is stuck.
        self._progress = 0
        # The thread's own state.
        self._connection: Connection | None = None
        self._amqp: Any = None  # its py-amqp connection (kombu's property would reconnect)
        self._channel: Any = None
        self._tag = 0
        self._unconfirmed: dict[int, _Request] = {}
        self._deadlines: deque[tuple[int, float]] = deque()  # (delivery tag, confirm by)
        self._next_heartbeat = 0.0
        self._publish_arguments: dict[tuple[str, str], bytes] = {}  # by exchange, key
        self._thread = threading.Thread(target=self._run, name="billsync-publisher", daemon=True)
        self._thread.start()

    @property
    def in_flight(self) -> int:
        return len(self._unconfirmed)

    def serving(self) -> bool:
        return self.pid == os.getpid() and not self._stopping and self._thread.is_alive()

    def publish(self, request: _Request) -> None:
        """Queue ``request`` and wait until it is confirmed; raise _NotConfirmed if not."""
        with self._lock:
            if self._stopping:
                raise _NotConfirmed("the publisher was closed", retry=False)
            self._queue.append(request)
            if self._sleeping:  # else it takes the queue before it sleeps again
                self._sleeping = False
                self._wake()
        # The thread fails every request in time by itself; this bound is for a
        # thread that would be stuck, and counts only while it makes no progress.
        patience = self._settings.publish_connect_timeout_seconds + self._confirm_timeout + 1
        seen = self._progress
        while not request.settled.acquire(timeout=patience):
            if self._progress == seen:
                request.abandoned = True
                if request.done:
                    break
                raise _NotConfirmed(f"the publisher was stuck for {patience:.0f}s", retry=False)
            seen = self._progress
        if request.error is not None:
            raise request.error

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake()
        self._thread.join(self._settings.publish_connect_timeout_seconds + self._confirm_timeout)

    def _wake(self) -> None:
        """Under ``_lock`` (the thread closes the pipe under it too)."""
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:  # the pipe is full of wake-ups already
                pass

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except Exception:  # a bug: callers must not wait on a dead thread
            log.exception("the publishing thread failed")
        finally:
            with self._lock:
                self._stopping = True
                queued = list(self._queue)
                self._queue.clear()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1
            closed = _NotConfirmed("the publisher was closed", retry=False)
            for request in [*queued, *self._unconfirmed.values()]:
                request.fail(closed)
            self._unconfirmed.clear()
            self._close_connection()

    def _step(self) -> bool:
        sock = self._socket()
        watched: list[int | socket.socket] = (
            [self._wake_r] if sock is None else [self._wake_r, sock]
        )
        with self._lock:
            self._sleeping = not self._queue
            timeout = self._select_timeout() if self._sleeping else 0.0
        try:
            readable, _, _ = select.select(watched, [], [], timeout)
        except (OSError, ValueError) as exc:  # the socket broke under us
            self._lost(exc)
            return True
        if self._wake_r in readable:
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
        if self._stopping:
            return False
        if sock is not None and sock in readable:
            try:
                self._read_confirms()
            except Exception as exc:
                self._lost(exc)
        with self._lock:
            self._sleeping = False
            batch = list(self._queue)
            self._queue.clear()
        try:
            if batch:
                self._send(batch)
            self._check_deadlines()
        except Exception as exc:
            self._lost(exc)
        return True

    def _socket(self) -> socket.socket | None:
        if self._amqp is None:
            return None
        sock: socket.socket = self._amqp.sock
        return sock

    def _select_timeout(self) -> float | None:
        now = time.monotonic()
        waits = []
        if self._deadlines:
            waits.append(self._deadlines[0][1] - now)
        if self._amqp is not None and self._heartbeat_interval():
            waits.append(self._next_heartbeat - now)
        return max(0.0, min(waits)) if waits else None

    def _heartbeat_interval(self) -> float:
        # py-amqp sends a heartbeat when half the negotiated interval went by silent,
        # if it is asked often enough: a quarter of it.
        negotiated = self._amqp.heartbeat or 0
        return float(negotiated) / 4

    def _send(self, batch: list[_Request]) -> None:
        live = [r for r in batch if not r.abandoned]
        if not live:
            return
        if self._amqp is None:
            try:
                self._connect()
            except Exception as exc:
                self._progress += 1
                log.warning("broker unreachable: %s: %s", type(exc).__name__, exc)
                unreachable = _NotConfirmed(f"broker unreachable: {exc}", retry=True)
                for request in live:
                    request.fail(unreachable)
                return
        # The batch's frames are written with one system call, not one per message (each
        # also hands the GIL to the request threads and waits to get it back). py-amqp
        # writes each frame through the transport's _write with a view of a buffer it
        # reuses, hence the copy.
        transport, sock = self._amqp.transport, self._amqp.sock
        frames: list[bytes] = []
        transport._write = lambda data: frames.append(bytes(data))
        sent = 0
        try:
            for n, request in enumerate(live):
                self._publish(request, frames)
                sent = n + 1
                if len(frames) >= self.READ_EVERY:
                    self._flush(frames, sock)
            self._flush(frames, sock)
        except Exception:
            # The connection is lost (handled by the caller), the requests after the
            # last one registered never sent.
            unsent = _NotConfirmed("broker connection lost before publishing", retry=True)
            for later in live[sent:]:
                later.fail(unsent)
            raise
        finally:
            transport._write = sock.sendall

    def _publish(self, request: _Request, frames: list[bytes]) -> None:
        # Straight to py-amqp's frame writer: channel.basic_publish waits for the confirm
        # (confirm_publish), _basic_publish first polls the socket for a
        # connection.blocked notice (three system calls per message; the select loop
        # reads it anyway), send_method makes a promise per message. The method's
        # arguments are the same for every message of a routing key: serialized once.
        write_frame, channel_id = self._amqp.frame_writer, self._channel.channel_id
        arguments = self._publish_arguments
        confirm_by = time.monotonic() + self._confirm_timeout
        for body, key, headers, message_id in request.items:
            method = arguments.get((request.exchange, key))
            if method is None:
                method = dumps("Bssbb", (0, request.exchange, key, False, False))
                arguments[request.exchange, key] = method
            message = Message(
                body.encode() if isinstance(body, str) else body,
                content_type="application/json",
                content_encoding="utf-8",
                application_headers=headers,
                delivery_mode=PERSISTENT,
                message_id=message_id,
            )
            write_frame(1, channel_id, spec.Basic.Publish, method, message)
            self._tag += 1
            self._unconfirmed[self._tag] = request
            self._deadlines.append((self._tag, confirm_by))
            if len(frames) >= self.READ_EVERY:
                self._flush(frames, self._amqp.sock)
                confirm_by = time.monotonic() + self._confirm_timeout
        self._progress += 1

    def _flush(self, frames: list[bytes], sock: socket.socket) -> None:
        """Send the frames buffered so far, then read what the broker answered meanwhile
        (a large batch, a pull's, must not leave its confirms unread until its end)."""
        if frames:
            data = b"".join(frames)
            frames.clear()
            sock.sendall(data)
            if select.select([sock], [], [], 0)[0]:
                self._read_confirms()

    def _read_confirms(self) -> None:
        """Handle every frame the socket holds now (acks, nacks, heartbeats, a close).

        One recv takes whatever arrived (the caller saw the socket readable, so it does
        not block) into py-amqp's read buffer, whose complete frames are then handled
        without another system call (its own drain_events(timeout=0) sets the socket's
        timeout twice and reads three times per frame).
        """
        amqp = self._amqp
        transport, sock = amqp.transport, amqp.sock
        while True:
            data = sock.recv(_RECV_BYTES)
            if not data:
                raise ConnectionError("the broker closed the connection")
            transport._read_buffer += data
            while _holds_a_frame(transport._read_buffer):
                amqp.blocking_read(None)  # from the buffer: does not read the socket
            # TLS may hold decrypted bytes that select does not see.
            pending = getattr(sock, "pending", None)
            if pending is None or not pending():
                return

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._progress += 1
        for tag in self._confirmed_tags(delivery_tag, multiple):
            request = self._unconfirmed.pop(tag, None)
            if request is not None:
                request.acked()

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._progress += 1
        refused = _NotConfirmed(
            "the broker refused the message (nack: a queue is full or failing)", retry=False
        )
        for tag in self._confirmed_tags(delivery_tag, multiple):
            request = self._unconfirmed.pop(tag, None)
            if request is not None:
                request.fail(refused)

    def _confirmed_tags(self, delivery_tag: int, multiple: bool) -> list[int]:
        if not multiple:
            return [delivery_tag]  # its deadline entry goes when it reaches the front
        tags = []
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= delivery_tag:
            tags.append(deadlines.popleft()[0])
        return tags

    def _check_deadlines(self) -> None:
        deadlines, unconfirmed = self._deadlines, self._unconfirmed
        while deadlines and deadlines[0][0] not in unconfirmed:
            deadlines.popleft()
        now = time.monotonic()
        if deadlines and deadlines[0][1] < now:
            raise TimeoutError(
                f"{len(unconfirmed)} messages not confirmed in {self._confirm_timeout}s"
            )
        if self._amqp is not None and self._heartbeat_interval():
            if now >= self._next_heartbeat:
                self._amqp.heartbeat_tick()  # raises if the broker went silent
                self._next_heartbeat = now + self._heartbeat_interval()

    def _connect(self) -> None:
        settings = self._settings
        connection = broker_connection(settings, write_timeout=self._confirm_timeout)
        try:
            connection.ensure_connection(max_retries=0)  # one attempt: callers retry
            amqp = connection.connection
            # Replies to the set-up below are awaited without a timeout of their own.
            amqp.sock.settimeout(settings.publish_connect_timeout_seconds)
            declare_topology(connection, self._topology)
            channel = connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            amqp.sock.settimeout(None)
        except BaseException:
            connection.collect()
            raise
        self._connection, self._amqp, self._channel, self._tag = connection, amqp, channel, 0
        self._next_heartbeat = time.monotonic() + self._heartbeat_interval()
        self._progress += 1

    def _lost(self, exc: Exception) -> None:
        """The connection is gone: fail what awaits a confirm on it; the next request
        connects anew."""
        self._progress += 1
        log.warning("broker connection lost: %s: %s", type(exc).__name__, exc)
        lost = _NotConfirmed(f"broker connection lost before the confirm: {exc}", retry=True)
        for request in self._unconfirmed.values():
            request.fail(lost)
        self._unconfirmed.clear()
        self._deadlines.clear()
        if self._connection is not None:
            try:
                self._connection.collect()  # no close handshake on a broken connection
            except Exception:
                log.debug("collecting a broken publishing connection", exc_info=True)
        self._connection = self._amqp = self._channel = None

    def _close_connection(self) -> None:
        connection, amqp = self._connection, self._amqp
        self._connection = self._amqp = self._channel = None
        if connection is None:
            return
        try:
            # A clean close, bounded: the broker may be gone.
            amqp.sock.settimeout(self._settings.publish_connect_timeout_seconds)
            connection.release()
        except Exception:
            log.debug("closing the publishing connection", exc_info=True)
            connection.collect()
