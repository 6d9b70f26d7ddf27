"""Test helpers: signing webhooks, reading the broker from outside with pika, recording
what a consumer applied."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pika
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from schemas import QueueMessage
from tests.events import Event, webhook_body
from worker.cli.runtime import ConsumerThread
from worker.db import Integration, Organization
from worker.messaging import Hooks
from worker.sync import Outcome

APPLY_QUEUE = "billsync.apply"
DEAD_LETTER_QUEUE = "billsync.dead-letters"


def signed_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def dumps(value: Any) -> bytes:
    """Any JSON request body (webhook bodies: ``tests.events.webhook_body``)."""
    return json.dumps(value).encode()


class BrokerProbe:
    """Looks at RabbitMQ from outside billsync, with pika (an independent client)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _channel(self) -> tuple[pika.BlockingConnection, Any]:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        return connection, connection.channel()

    def depth(self, queue: str = APPLY_QUEUE) -> int:
        return int(self._declare_ok(queue).message_count)

    def consumers(self, queue: str = APPLY_QUEUE) -> int:
        return int(self._declare_ok(queue).consumer_count)

    def _declare_ok(self, queue: str) -> Any:
        connection, channel = self._channel()
        try:
            return channel.queue_declare(queue, passive=True).method
        finally:
            connection.close()

    def get(self, queue: str = APPLY_QUEUE) -> tuple[Any, Any, bytes] | None:
        """Take one message (acked), as (method, properties, body), or None."""
        connection, channel = self._channel()
        try:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            return None if method is None else (method, properties, body)
        finally:
            connection.close()

    def reset(self) -> None:
        """Delete billsync's queues so each test starts from nothing."""
        connection, channel = self._channel()
        try:
            for queue in (APPLY_QUEUE, DEAD_LETTER_QUEUE):
                channel.queue_delete(queue)
        finally:
            connection.close()


def empty_schema_engine(database_url: str, schema: str) -> Engine:
    """An engine on ``schema`` of the PostgreSQL database, made empty first: a database
    of its own for a test, without creating one."""
    admin = create_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return create_engine(database_url, connect_args={"options": f"-csearch_path={schema}"})


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def send_signed(client: Any, integration: Any, events: Event | list[Event]) -> None:
    """POST ``events`` signed with the integration's secret; they must be accepted."""
    body = webhook_body(events)
    response = client.post(
        integration.url, data=body, headers=signed_headers(integration.secret, body)
    )
    assert response.status_code == 202, response.get_json()


def row_count(sessions: Any, model: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


class Recorder(Hooks):
    """A consumer hook that keeps the outcomes of what it applied, thread-safely."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()

    def after_apply(
        self, messages: Sequence[QueueMessage], outcomes: Sequence[Outcome], seconds: float
    ) -> None:
        with self._lock:
            self.outcomes.extend(outcomes)

    def statuses(self) -> list[str]:
        with self._lock:
            return [o.status for o in self.outcomes]

    @property
    def seen(self) -> int:
        with self._lock:
            return len(self.outcomes)


@contextmanager
def running(*consumers: Any) -> Iterator[None]:
    """Consumers (apply, archive) running in background threads for the block."""
    threads = [ConsumerThread(c) for c in consumers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for thread in threads:
            thread.stop()


def add_integration(
    sessions: sessionmaker[Session], integration_id: str = "int-1"
) -> sessionmaker[Session]:
    """An organization and one active integration (time logs before 1 Nov invoiced)."""
    with sessions.begin() as session:
        session.add(Organization(id="org-1", name="Acme"))
        session.flush()
        session.add(
            Integration(
                id=integration_id,
                organization_id="org-1",
                portal_id="portal",
                status="active",
                modules=["projects", "timesheets"],
                invoiced_before=date(2026, 11, 1),
            )
        )
    return sessions
