"""The apply consumer on real RabbitMQ and PostgreSQL: end to end, crash safety, retries."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pika
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Connected
from tests.support import (
    DEAD_LETTER_QUEUE,
    BrokerProbe,
    project_event,
    row_count,
    running,
    send_signed,
    wait_until,
)
from worker.cli.runtime import build_consumer
from worker.db import Project
from worker.messaging.connection import broker_connection
from worker.messaging.consumer import ApplyConsumer
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings
from worker.sync.apply import Outcome

pytestmark = pytest.mark.integration


class Recorder:
    """Collects the outcomes a consumer reports, thread-safely."""

    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        with self._lock:
            self.outcomes.extend(outcomes)

    def statuses(self) -> list[str]:
        with self._lock:
            return [o.status for o in self.outcomes]


def project_count(sessions: sessionmaker[Session]) -> int:
    return row_count(sessions, Project)


def test_a_signed_webhook_becomes_a_row(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, on_outcomes=recorder)):
        send_signed(client, integration, project_event(name="Apollo", event_id="e-1"))
        wait_until(lambda: recorder.statuses() == ["applied"])
    with pg_sessions() as session:
        assert session.scalars(select(Project.name)).one() == "Apollo"
    assert broker.depth() == 0


def test_many_webhooks_are_applied_in_batches_exactly_once(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    for n in range(60):
        send_signed(client, integration, project_event(f"P{n}", event_id=f"e-{n}"))
    send_signed(client, integration, project_event("P0", event_id="e-0"))  # a resend
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, on_outcomes=recorder)):
        wait_until(lambda: len(recorder.statuses()) == 61)
    assert sorted(recorder.statuses()) == ["applied"] * 60 + ["duplicate"]
    assert project_count(pg_sessions) == 60


class StopsBeforeAck(ApplyConsumer):
    """Commits, then 'dies' before acking: the connection closes with the messages unacked."""

    def _settle(self, messages: Sequence[Any], outcomes: Sequence[Outcome], started: float) -> None:
        self.committed = list(outcomes)
        self.should_stop = True
        self.connection.close()  # the broker requeues what was not acked, as after a crash
        raise OSError("worker stopped between commit and ack")


def test_a_worker_stopped_after_commit_before_ack_redelivers_and_the_redelivery_is_a_no_op(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project_event(name="Apollo", event_id="e-crash"))
    topology = build_topology(settings)
    crashing = StopsBeforeAck(
        broker_connection(settings), topology, pg_sessions, Publisher(settings, topology), settings
    )
    with running(crashing):
        wait_until(lambda: getattr(crashing, "committed", None))
    assert [o.status for o in crashing.committed] == ["applied"]
    assert project_count(pg_sessions) == 1

    wait_until(lambda: broker.depth() == 1)  # back in the queue, unacked
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, on_outcomes=recorder)):
        wait_until(lambda: recorder.statuses())
    assert recorder.statuses() == ["duplicate"]
    assert project_count(pg_sessions) == 1
    assert broker.depth() == 0


class FlakySessions:
    """A sessionmaker whose first ``failures`` transactions fail like a lost database."""

    def __init__(self, sessions: sessionmaker[Session], failures: int) -> None:
        self._sessions = sessions
        self.failures = failures

    def begin(self) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("BEGIN", {}, Exception("connection lost"))
        return self._sessions.begin()


def test_a_failing_apply_is_retried_and_then_applied(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project_event(event_id="e-flaky"))
    recorder = Recorder()
    flaky: Any = FlakySessions(pg_sessions, failures=3)
    with running(build_consumer(settings, flaky, on_outcomes=recorder)):
        wait_until(lambda: recorder.statuses())
    assert recorder.statuses() == ["applied"]
    assert flaky.failures == 0


class RefusesEveryEvent(ApplyConsumer):
    """Every apply fails as the database refuses the event itself (the database is up)."""

    def _apply(self, messages: Sequence[Any]) -> list[Outcome]:
        raise IntegrityError("INSERT", {}, Exception("violates check constraint"))


def test_an_apply_that_keeps_failing_is_dead_lettered_with_its_error(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project_event(event_id="e-doomed"))
    topology = build_topology(settings)
    refusing = RefusesEveryEvent(
        broker_connection(settings), topology, pg_sessions, Publisher(settings, topology), settings
    )
    with running(refusing):
        wait_until(lambda: broker.depth(DEAD_LETTER_QUEUE) == 1)
    _, properties, body = broker.get(DEAD_LETTER_QUEUE) or (None, None, b"")
    assert properties.headers["event-id"] == "e-doomed"
    assert properties.headers["x-billsync-error-class"] == "IntegrityError"
    assert properties.headers["x-billsync-attempts"] == settings.apply_max_attempts
    assert b"e-doomed" in body
    assert broker.depth() == 0


def test_an_undecodable_message_is_dead_lettered_not_dropped(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
    publisher: Publisher,
) -> None:
    publisher.declare_topology()
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    connection.channel().basic_publish(
        "billsync.events",
        "projects.updated",
        b'{"not": "a message"}',
        pika.BasicProperties(content_type="application/json", delivery_mode=2),
    )
    connection.close()
    with running(build_consumer(settings, pg_sessions)):
        wait_until(lambda: broker.depth(DEAD_LETTER_QUEUE) == 1)
    _, properties, body = broker.get(DEAD_LETTER_QUEUE) or (None, None, b"")
    assert properties.headers["x-billsync-error-class"] == "UndecodableMessage"
    assert body == b'{"not": "a message"}'
