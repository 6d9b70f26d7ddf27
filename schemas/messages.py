"""The queue message: a validated webhook event plus where and when it came in.

Webhooks, pulls and replays all publish this one shape, so one consumer serves all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.envelope import WebhookEvent
from schemas.headers import (
    ACTION_HEADER,
    EVENT_ID_HEADER,
    INTEGRATION_ID_HEADER,
    MODULE_HEADER,
    SOURCE_HEADER,
)

__all__ = ["QueueMessage", "queue_message_adapter", "routing_key"]

Source = Literal["webhook", "pull", "replay"]


class QueueMessage(BaseModel):
    """One change event as it travels through the broker (JSON body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=200)
    integration_id: str = Field(min_length=1, max_length=64)
    source: Source = "webhook"
    received_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    event: WebhookEvent

    def headers(self) -> dict[str, str]:
        """AMQP headers that let tools route and filter without parsing the body."""
        return {
            EVENT_ID_HEADER: self.event_id,
            INTEGRATION_ID_HEADER: self.integration_id,
            MODULE_HEADER: self.event.module.value,
            ACTION_HEADER: self.event.action.value,
            SOURCE_HEADER: self.source,
        }


def routing_key(message: QueueMessage) -> str:
    """Topic routing key ``<module>.<action>``."""
    return f"{message.event.module.value}.{message.event.action.value}"


queue_message_adapter: TypeAdapter[QueueMessage] = TypeAdapter(QueueMessage)
