"""The apply consumer on real RabbitMQ and PostgreSQL: end to end, crash safety, retries."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pika
import pytest
from flask.testing import FlaskClient
from kombu.transport.base import Message
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.conftest import Connected
from tests.events import project
from tests.support import (
    DEAD_LETTER_QUEUE,
    BrokerProbe,
    Recorder,
    row_count,
    running,
    send_signed,
    wait_until,
)
from worker.cli.runtime import build_consumer
from worker.db import Project
from worker.messaging import ApplyConsumer, Hooks
from worker.messaging.publisher import Publisher
from worker.settings import Settings
from worker.sync import Outcome

pytestmark = pytest.mark.integration


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
    with running(build_consumer(settings, pg_sessions, hooks=[recorder])):
        send_signed(client, integration, project(name="Apollo", event_id="e-1"))
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
        send_signed(client, integration, project(f"P{n}", event_id=f"e-{n}"))
    send_signed(client, integration, project("P0", event_id="e-0"))  # a resend
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, hooks=[recorder])):
        wait_until(lambda: len(recorder.statuses()) == 61)
    assert sorted(recorder.statuses()) == ["applied"] * 60 + ["duplicate"]
    assert project_count(pg_sessions) == 60


class StopsBeforeAck(Hooks):
    """Its consumer commits, then 'dies' before acking: the connection closes with the
    messages unacked (``after_apply`` runs between the commit and the acks)."""

    def __init__(self) -> None:
        self.consumer: ApplyConsumer | None = None
        self.committed: list[Outcome] = []

    def after_apply(
        self, messages: Sequence[QueueMessage], outcomes: Sequence[Outcome], seconds: float
    ) -> None:
        assert self.consumer is not None, "the test hands the hook its consumer"
        self.committed = list(outcomes)
        self.consumer.should_stop = True
        self.consumer.connection.close()  # the broker requeues what was not acked
        raise OSError("worker stopped between commit and ack")


def test_a_worker_stopped_after_commit_before_ack_redelivers_and_the_redelivery_is_a_no_op(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project(name="Apollo", event_id="e-crash"))
    crash = StopsBeforeAck()
    crash.consumer = build_consumer(settings, pg_sessions, hooks=[crash])
    with running(crash.consumer):
        wait_until(lambda: crash.committed)
    assert [o.status for o in crash.committed] == ["applied"]
    assert project_count(pg_sessions) == 1

    wait_until(lambda: broker.depth() == 1)  # back in the queue, unacked
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, hooks=[recorder])):
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
    send_signed(client, integration, project(event_id="e-flaky"))
    recorder = Recorder()
    flaky: Any = FlakySessions(pg_sessions, failures=3)
    with running(build_consumer(settings, flaky, hooks=[recorder])):
        wait_until(lambda: recorder.statuses())
    assert recorder.statuses() == ["applied"]
    assert flaky.failures == 0


class RefusesEveryEvent(Hooks):
    """Every apply fails as the database refuses the event itself (the database is up)."""

    def before_apply(self, messages: Sequence[QueueMessage]) -> None:
        raise IntegrityError("INSERT", {}, Exception("violates check constraint"))


def test_an_apply_that_keeps_failing_is_dead_lettered_with_its_error(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project(event_id="e-doomed"))
    with running(build_consumer(settings, pg_sessions, hooks=[RefusesEveryEvent()])):
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


# -- hooks ------------------------------------------------------------------------------


class Heard(Hooks):
    """Notes every call the consumer makes to its hooks, in order, thread-safely."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    def _note(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    def names(self) -> list[str]:
        with self._lock:
            return [call[0] for call in self.calls]

    def before_apply(self, messages: Sequence[QueueMessage]) -> None:
        self._note("before_apply", [m.event_id for m in messages])

    def after_apply(
        self, messages: Sequence[QueueMessage], outcomes: Sequence[Outcome], seconds: float
    ) -> None:
        self._note("after_apply", [o.status for o in outcomes], seconds)

    def on_batch_failed(self, messages: Sequence[QueueMessage], error: BaseException) -> None:
        self._note("on_batch_failed", [m.event_id for m in messages], type(error).__name__)

    def on_retry(self, message: Message, error: BaseException, attempt: int, delay: float) -> None:
        self._note("on_retry", message.headers["event-id"], type(error).__name__, attempt, delay)

    def on_dead_letter(self, message: Message, error: BaseException, attempts: int) -> None:
        self._note("on_dead_letter", message.headers["event-id"], type(error).__name__, attempts)

    def on_batch_conflict(self, messages: Sequence[QueueMessage], error: BaseException) -> None:
        self._note("on_batch_conflict", str(error))

    def on_database_outage(self, cause: str) -> None:
        self._note("on_database_outage", cause)

    def on_database_recovered(self, seconds: float, cause: str) -> None:
        self._note("on_database_recovered", seconds, cause)


def test_hooks_hear_every_attempt_of_an_event_that_fails_until_it_is_dead_lettered(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project(event_id="e-doomed"))
    heard = Heard()
    with running(build_consumer(settings, pg_sessions, hooks=[RefusesEveryEvent(), heard])):
        wait_until(lambda: "on_dead_letter" in heard.names())

    # A hook that raises in before_apply stops the others hearing of that attempt.
    attempts = settings.apply_max_attempts
    first, *retries, last = heard.calls
    assert first == ("on_batch_failed", ["e-doomed"], "IntegrityError")
    assert [(c[0], c[1], c[2], c[3]) for c in retries] == [
        ("on_retry", "e-doomed", "IntegrityError", n) for n in range(1, attempts)
    ]
    assert all(0 < c[4] <= settings.retry_max_seconds for c in retries)
    assert last == ("on_dead_letter", "e-doomed", "IntegrityError", attempts)


def test_hooks_hear_a_batch_before_and_after_it_is_applied(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    heard = Heard()
    with running(build_consumer(settings, pg_sessions, hooks=[heard])):
        send_signed(client, integration, project(event_id="e-heard"))
        wait_until(lambda: "after_apply" in heard.names())

    (before, after) = heard.calls
    assert before == ("before_apply", ["e-heard"])
    assert after[:2] == ("after_apply", ["applied"])
    assert after[2] > 0


def test_hooks_hear_a_database_outage_begin_and_end(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project(event_id="e-outage"))
    heard = Heard()
    flaky: Any = FlakySessions(pg_sessions, failures=3)
    with running(build_consumer(settings, flaky, hooks=[heard])):
        wait_until(lambda: "after_apply" in heard.names())

    assert [c[0] for c in heard.calls if c[0] != "before_apply"] == [
        "on_database_outage",
        "on_database_recovered",
        "after_apply",
    ]
    outage = next(c for c in heard.calls if c[0] == "on_database_outage")
    recovered = next(c for c in heard.calls if c[0] == "on_database_recovered")
    assert "connection lost" in outage[1]
    assert recovered[1] > 0 and recovered[2] == outage[1]
