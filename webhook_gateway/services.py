"""What the blueprints share, kept in ``app.extensions["billsync"]``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from worker.integrations import WebhookCredentials, webhook_credentials
from worker.messaging.publisher import Publisher
from worker.messaging.topology import APPLY_QUEUE, DEAD_LETTER_QUEUE
from worker.settings import Settings

__all__ = ["Services", "services"]


@dataclass(frozen=True)
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    publisher: Publisher

    _credentials: dict[str, tuple[float, WebhookCredentials | None]] = field(
        default_factory=dict, repr=False
    )

    def credentials(self, integration_id: str, *, fresh: bool = False) -> WebhookCredentials | None:
        """An integration's webhook credentials, cached for a few seconds.

        Webhooks for one integration come in bursts; caching spares two queries per
        request. A caller whose check failed asks again with ``fresh=True``, so a
        rotated secret works at once; a deletion is seen within the cache time.
        """
        now = time.monotonic()
        cached = self._credentials.get(integration_id)
        if cached is not None and not fresh and cached[0] > now:
            return cached[1]
        with self.read() as session:
            found = webhook_credentials(session, integration_id)
        self._credentials[integration_id] = (now + self.settings.credentials_cache_seconds, found)
        return found

    def queue_depths(self) -> dict[str, int | None]:
        """The shared queues' depths (every integration's events go through them)."""
        return {
            "backlog": self.publisher.queue_depth(APPLY_QUEUE),
            "dead_letter_queue": self.publisher.queue_depth(DEAD_LETTER_QUEUE),
        }

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session


def services() -> Services:
    found: Services = current_app.extensions["billsync"]
    return found
