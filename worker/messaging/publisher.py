"""Durable publishing: persistent messages, publisher confirms, bounded retries.

Used by the gateway (inside a request, so nothing here may block for long: kombu
retries forever unless told otherwise), by the worker to dead-letter, and by pull
sync and replay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from amqp.exceptions import MessageNacked
from kombu.connection import Connection
from kombu.entity import Exchange

from schemas import QueueMessage, routing_key
from worker.errors import BrokerUnavailable
from worker.messaging.connection import broker_connection
from worker.messaging.topology import Topology, declare_topology
from worker.settings import Settings

__all__ = ["Publisher"]

_Item = tuple[bytes | str, str, dict[str, Any], str | None]

log = logging.getLogger(__name__)

PERSISTENT = 2


class Publisher:
    """Publishes to the broker through a small pool of confirming connections.

    ``publish`` returns only after the broker confirmed every message, and raises
    ``BrokerUnavailable`` once the configured retries and timeouts are spent.
    """

    def __init__(self, settings: Settings, topology: Topology) -> None:
        self._settings = settings
        self._topology = topology
        self._connection = broker_connection(settings)
        self._pool = self._connection.Pool(limit=settings.publish_pool_size)
        self._bulk: _ConfirmChannel | None = None
        self._bulk_lock = threading.Lock()

    @property
    def topology(self) -> Topology:
        return self._topology

    def declare_topology(self) -> None:
        """Declare exchanges and queues now (the gateway does this at start)."""
        with self._acquire() as connection:
            declare_topology(connection, self._topology)

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        """Publish change events to ``billsync.events``; all confirmed or raise."""
        items = [(m.model_dump_json(), routing_key(m), m.headers(), m.event_id) for m in messages]
        if len(items) > 1 and not self._settings.is_embedded_broker:
            self._publish_pipelined(self._topology.events, items)
        else:
            self._publish_many(self._topology.events, items)

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
        self._pool.force_close_all()
        self._connection.release()
        with self._bulk_lock:
            if self._bulk is not None:
                self._bulk.close()
                self._bulk = None

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

    def _publish_pipelined(self, exchange: Exchange, items: Sequence[_Item]) -> None:
        """Publish many messages on AMQP, then wait for all their confirms at once.

        kombu's confirming publish waits for each confirm before the next message (one
        round trip each); a bulk publisher (pull, replay) pipelines them on one
        long-lived confirm channel of its own. A failure republishes the whole batch:
        duplicates are harmless (the consumer dedupes on event ids), losses are not.
        """
        settings = self._settings
        with self._bulk_lock:
            for attempt in range(settings.publish_max_retries + 1):
                try:
                    if self._bulk is None:
                        self._bulk = _ConfirmChannel(broker_connection(settings), self._topology)
                    self._bulk.publish(
                        exchange.name, items, settings.publish_confirm_timeout_seconds
                    )
                    return
                except Exception as exc:
                    if self._bulk is not None:
                        self._bulk.close()
                        self._bulk = None
                    log.warning("bulk publish failed: %s: %s", type(exc).__name__, exc)
                    if attempt == settings.publish_max_retries:
                        raise BrokerUnavailable(
                            f"broker did not confirm the publish: {exc}"
                        ) from exc

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


class _ConfirmChannel:
    """A connection with one confirm-mode channel; publishes pipelined, confirms awaited.

    Delivery tags count from 1 across the channel's life. Acks arrive through the
    channel's event listeners (one socket read may carry several; some cover many
    tags at once with ``multiple``).
    """

    def __init__(self, connection: Connection, topology: Topology) -> None:
        self.connection = connection
        connection.ensure_connection(max_retries=1)
        declare_topology(connection, topology)
        self.channel = connection.channel()
        self.channel.confirm_select()
        self.sent = 0
        self.pending: set[int] = set()
        self.nacked: list[int] = []
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self.pending = {tag for tag in self.pending if tag > delivery_tag}
        else:
            self.pending.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, _multiple: bool) -> None:
        self.nacked.append(delivery_tag)

    def publish(self, exchange: str, items: Sequence[_Item], timeout: float) -> None:
        for body, key, headers, message_id in items:
            message = self.channel.prepare_message(
                body.encode() if isinstance(body, str) else body,
                content_type="application/json",
                content_encoding="utf-8",
                headers=headers,
                properties={"delivery_mode": PERSISTENT, "message_id": message_id},
            )
            self.channel._basic_publish(message, exchange=exchange, routing_key=key)
            self.sent += 1
            self.pending.add(self.sent)
        deadline = time.monotonic() + timeout
        while self.pending and not self.nacked:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.pending)} messages not confirmed in {timeout}s")
            self.connection.drain_events(timeout=remaining)
        if self.nacked:
            raise MessageNacked(f"the broker refused message {self.nacked[0]}")

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:  # already broken: nothing left to release
            log.debug("closing a broken bulk-publish connection", exc_info=True)
