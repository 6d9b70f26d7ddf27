"""The billsync contract: webhook events, queue messages and API bodies. No I/O."""

from schemas.envelope import (
    Action,
    DeletedEvent,
    Module,
    WebhookEvent,
    event_adapter,
    events_adapter,
)
from schemas.messages import QueueMessage, queue_message_adapter, routing_key

__all__ = [
    "Action",
    "DeletedEvent",
    "Module",
    "QueueMessage",
    "WebhookEvent",
    "event_adapter",
    "events_adapter",
    "queue_message_adapter",
    "routing_key",
]
