"""Durable publishing: persistent messages, publisher confirms, bounded retries.

Used by the gateway (inside a request, so nothing here may block for long: kombu
retries forever unless told otherwise), by the worker to dead-letter, and by pull
sync and replay.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange

from schemas import QueueMessage, routing_key
from worker.errors import BrokerUnavailable
from worker.messaging.connection import broker_connection
from worker.messaging.topology import Topology, declare_topology
from worker.settings import Settings

__all__ = ["Publisher"]

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

    @property
    def topology(self) -> Topology:
        return self._topology

    def declare_topology(self) -> None:
        """Declare exchanges and queues now (the gateway does this at start)."""
        with self._acquire() as connection:
            declare_topology(connection, self._topology)

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        """Publish change events to ``billsync.events``; all confirmed or raise."""
        self._publish_many(
            self._topology.events,
            [(m.model_dump_json(), routing_key(m), m.headers(), m.event_id) for m in messages],
        )

    def publish_dead_letter(
        self, body: bytes | str, *, routing_key: str, headers: dict[str, Any]
    ) -> None:
        """Publish a dead letter (the original body, the error in headers); confirmed."""
        self._publish_many(
            self._topology.dead_letter_exchange, [(body, routing_key, headers, None)]
        )

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

    def _publish_many(
        self,
        exchange: Exchange,
        items: Sequence[tuple[bytes | str, str, dict[str, Any], str | None]],
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
