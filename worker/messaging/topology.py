"""Broker topology, declared once and shared by the gateway, the worker and replay.

    billsync.events        durable topic exchange, routing key <module>.<action>
      └─ billsync.apply    quorum queue: explicit delivery limit, dead-letters to ↓
    billsync.dead-letter   durable topic exchange
      └─ billsync.dead-letters  quorum queue holding every dead letter

Retry with back-off is done by the worker (it keeps a failing message unacked and
retries it after an exponential, jittered delay, then dead-letters it with its
error), so the embedded transport, which has no TTL or DLX, keeps the same
guarantees. The broker's delivery limit catches what the worker cannot: a message
that crashes the process every time it is delivered. Dead-lettering on RabbitMQ is
at-least-once (``x-dead-letter-strategy``), so nothing is lost between the queues.

Declaring is idempotent: re-declaring with the same arguments is a no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from worker.settings import Settings

__all__ = ["Topology", "build_topology", "declare_topology"]

EVENTS_EXCHANGE = "billsync.events"
APPLY_QUEUE = "billsync.apply"
DEAD_LETTER_EXCHANGE = "billsync.dead-letter"
DEAD_LETTER_QUEUE = "billsync.dead-letters"


@dataclass(frozen=True)
class Topology:
    events: Exchange
    apply_queue: Queue
    dead_letter_exchange: Exchange
    dead_letter_queue: Queue

    def all_entities(self) -> tuple[Exchange | Queue, ...]:
        return (self.events, self.dead_letter_exchange, self.apply_queue, self.dead_letter_queue)


def build_topology(settings: Settings) -> Topology:
    events = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)
    dead_letter = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)
    apply_queue = Queue(
        APPLY_QUEUE,
        exchange=events,
        routing_key="#",
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-delivery-limit": settings.delivery_limit,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-strategy": "at-least-once",
            # at-least-once dead-lettering requires reject-publish overflow.
            "x-overflow": "reject-publish",
        },
    )
    dead_letter_queue = Queue(
        DEAD_LETTER_QUEUE,
        exchange=dead_letter,
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    return Topology(events, apply_queue, dead_letter, dead_letter_queue)


def declare_topology(connection: Connection, topology: Topology) -> None:
    """Declare every exchange, queue and binding on ``connection`` (idempotent)."""
    channel = connection.default_channel
    for entity in topology.all_entities():
        entity.bind(channel).declare()
