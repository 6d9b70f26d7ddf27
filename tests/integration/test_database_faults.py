"""Database faults on real PostgreSQL and RabbitMQ, through a TCP proxy the test cuts or
partitions: an outage costs no attempts and dead-letters nothing, a worker cut off
mid-transaction does not stop another, and a poison event is still dead-lettered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.conftest import Connected
from tests.events import message, project
from tests.integration.test_consumer import Heard
from tests.support import (
    DEAD_LETTER_QUEUE,
    BrokerProbe,
    Recorder,
    row_count,
    running,
    wait_until,
)
from tests.tcp_proxy import TcpProxy
from worker.cli.runtime import build_consumer
from worker.db import ProcessedEvent, Project, make_engine, make_sessionmaker
from worker.messaging import Hooks
from worker.messaging.publisher import Publisher
from worker.settings import Settings

pytestmark = pytest.mark.integration

# Generous but finite: a worker cut off mid-transaction loses its session on the server
# after IDLE seconds; another worker waiting for its locks gives up after LOCK and retries.
BOUNDED = {
    "db_lock_timeout_seconds": 1.0,
    "db_idle_in_transaction_seconds": 2.0,
    "db_statement_timeout_seconds": 30.0,
    "db_connect_timeout_seconds": 2,
    "db_outage_probe_max_seconds": 0.2,
}


@pytest.fixture
def bounded(settings: Settings) -> Settings:
    return settings.model_copy(update=BOUNDED)


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        yield proxy


@pytest.fixture
def through_proxy(bounded: Settings, proxy: TcpProxy) -> Settings:
    """Settings whose database connections go through the proxy."""
    url = make_url(bounded.database_url).set(host="127.0.0.1", port=proxy.port)
    return bounded.model_copy(update={"database_url": url.render_as_string(hide_password=False)})


def engine_for(settings: Settings, pg_sessions: sessionmaker[Session]) -> Engine:
    # pg_sessions (a dependency of the callers) has emptied the database for the test.
    return make_engine(settings)


@pytest.fixture
def proxied_engine(through_proxy: Settings, pg_sessions: sessionmaker[Session]) -> Iterator[Engine]:
    engine = engine_for(through_proxy, pg_sessions)
    yield engine
    engine.dispose()


class CountingSessions:
    """A sessionmaker that counts the transactions begun through it (tries of the database)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.begun = 0

    def begin(self) -> Any:
        self.begun += 1
        return self._sessions.begin()

    def __call__(self, **kwargs: Any) -> Session:
        return self._sessions(**kwargs)


def events(integration: Connected, prefix: str, count: int, **kwargs: Any) -> list[QueueMessage]:
    return [
        message(project(f"P{n}", **kwargs), integration.id, f"{prefix}-{n}") for n in range(count)
    ]


def names(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Project.name)))


def ledger(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(ProcessedEvent.event_id)))


# -- an outage ----------------------------------------------------------------------

OUTAGE_SECONDS = 3.0


def attempts_last(settings: Settings) -> float:
    """The longest an event's attempts take with these settings (back-off, no jitter)."""
    return float(
        sum(
            min(settings.retry_max_seconds, settings.retry_base_seconds * 2**n)
            for n in range(settings.apply_max_attempts)
        )
    )


def test_a_database_outage_costs_no_attempts_and_every_event_is_applied_after_it(
    integration: Connected,
    through_proxy: Settings,
    proxied_engine: Engine,
    proxy: TcpProxy,
    publisher: Publisher,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    before, during = events(integration, "before", 20), events(integration, "during", 60)[20:]
    tries = CountingSessions(make_sessionmaker(proxied_engine))
    counter = Recorder()
    consumer = build_consumer(through_proxy, tries, hooks=[counter])  # type: ignore[arg-type]
    with running(consumer):
        publisher.publish(before)
        wait_until(lambda: counter.seen == len(before))

        proxy.cut()
        publisher.publish(during)
        wait_until(lambda: broker.depth() == 0)  # the worker holds them, unapplied
        tried = tries.begun
        # The outage outlasts every event's attempts, and the worker kept trying meanwhile.
        time.sleep(OUTAGE_SECONDS)  # the fault's duration, not a wait for a result
        assert OUTAGE_SECONDS > 2 * attempts_last(through_proxy)
        assert tries.begun > tried + through_proxy.apply_max_attempts
        proxy.restore()

        wait_until(lambda: counter.seen == len(before) + len(during), timeout=30)
    assert broker.depth(DEAD_LETTER_QUEUE) == 0
    assert row_count(pg_sessions, Project) == 60


# -- a poison event -----------------------------------------------------------------


@pytest.fixture
def poison_refused(pg_engine: Engine, pg_sessions: sessionmaker[Session]) -> Iterator[None]:
    """The database refuses the project "POISON" (a check constraint): a real failure of
    that one event, every time."""
    with pg_engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE projects ADD CONSTRAINT test_poison CHECK (source_id <> 'POISON')")
        )
    yield
    with pg_engine.begin() as connection:
        connection.execute(text("ALTER TABLE projects DROP CONSTRAINT test_poison"))


def test_a_poison_event_is_still_dead_lettered_after_its_attempts(
    integration: Connected,
    bounded: Settings,
    poison_refused: None,
    publisher: Publisher,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    poison = message(project("POISON"), integration.id, "poison")
    publisher.publish([poison, *events(integration, "ok", 10)])
    with running(build_consumer(bounded, pg_sessions)):
        wait_until(lambda: broker.depth(DEAD_LETTER_QUEUE) == 1, timeout=20)
        wait_until(lambda: row_count(pg_sessions, Project) == 10)
    dead = broker.get(DEAD_LETTER_QUEUE)
    assert dead is not None
    _, properties, _ = dead
    assert properties.headers["event-id"] == "poison"
    assert properties.headers["x-billsync-error-class"] == "IntegrityError"
    assert properties.headers["x-billsync-attempts"] == bounded.apply_max_attempts


# -- a worker cut off mid-transaction -----------------------------------------------


def partitioned_worker(
    settings: Settings, engine: Engine, proxy: TcpProxy
) -> tuple[Any, threading.Event]:
    """A worker that applies its first batch, then its path to the database goes silent
    before the commit gets through: the server keeps the transaction and its locks, the
    worker waits. The partition is set off by SQLAlchemy's ``before_commit`` hook on the
    worker's sessions (the consumer's own hooks run before the transaction or after it)."""
    sessions = make_sessionmaker(engine)
    partitioned = threading.Event()

    def partition(_session: Session) -> None:
        proxy.partition()
        partitioned.set()

    event.listen(sessions, "before_commit", partition, once=True)
    return build_consumer(settings, sessions), partitioned


@pytest.fixture
def direct_engine(bounded: Settings, pg_sessions: sessionmaker[Session]) -> Iterator[Engine]:
    engine = engine_for(bounded, pg_sessions)
    yield engine
    engine.dispose()


def test_a_worker_cut_off_mid_transaction_does_not_stop_another_beyond_the_timeouts(
    integration: Connected,
    bounded: Settings,
    through_proxy: Settings,
    proxied_engine: Engine,
    direct_engine: Engine,
    proxy: TcpProxy,
    publisher: Publisher,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    first = events(integration, "first", 5, name="First", at="2026-11-24T10:00:00Z")
    second = events(integration, "second", 5, name="Second", at="2026-11-24T11:00:00Z")
    # The cut-off worker takes the first five and no more; the other the second five,
    # newer versions of the same projects, whose rows the cut-off transaction holds.
    holds_five = through_proxy.model_copy(update={"prefetch": 5, "batch_size": 5})
    cut_off, partitioned = partitioned_worker(holds_five, proxied_engine, proxy)
    publisher.publish(first)
    with running(cut_off):
        wait_until(partitioned.is_set)
        publisher.publish(second)
        other = build_consumer(bounded, make_sessionmaker(direct_engine))
        with running(other):
            wait_until(lambda: names(pg_sessions) == {"Second"}, timeout=60)

        proxy.restore()  # the cut-off worker learns its session ended and applies again
        everything = {m.event_id for m in first + second}
        wait_until(lambda: ledger(pg_sessions) == everything, timeout=30)
    assert names(pg_sessions) == {"Second"}
    assert broker.depth(DEAD_LETTER_QUEUE) == 0


# -- a deadlock or a serialization failure ------------------------------------------


class ConflictsAtCommit(Hooks):
    """The first ``times`` batch transactions fail just before their commit with a real
    PostgreSQL error of ``condition`` (raised by the server inside the transaction,
    after the batch's writes), as a deadlock or a serialization failure would."""

    def __init__(self, sessions: sessionmaker[Session], condition: str, times: int) -> None:
        self.left = times
        self._condition = condition
        self._armed = False  # the next commit is a batch's (not a probe's)
        event.listen(sessions, "before_commit", self._commit)

    def before_apply(self, messages: Sequence[QueueMessage]) -> None:
        self._armed = self.left > 0

    def _commit(self, session: Session) -> None:
        if not self._armed:
            return
        self._armed = False
        self.left -= 1
        session.execute(
            text(
                "DO $$ BEGIN RAISE EXCEPTION 'injected by the test' "
                f"USING ERRCODE = '{self._condition}'; END $$"
            )
        )


@pytest.mark.parametrize("condition", ["deadlock_detected", "serialization_failure"])
def test_a_batch_failing_on_a_deadlock_is_applied_again_whole_spending_no_attempt(
    condition: str,
    integration: Connected,
    settings: Settings,
    publisher: Publisher,
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    """One attempt only: had a deadlock (40P01) or a serialization failure (40001) cost
    the events an attempt, or had the batch been bisected as for a failing event, the
    first would have dead-lettered them."""
    one_attempt = settings.model_copy(update={"apply_max_attempts": 1})
    sessions = make_sessionmaker(pg_engine)  # the test's own: its listener goes with it
    conflicts = ConflictsAtCommit(sessions, condition, times=3)
    heard = Heard()
    batch = events(integration, condition, 30)
    publisher.publish(batch)
    with running(build_consumer(one_attempt, sessions, hooks=[conflicts, heard])):
        wait_until(lambda: ledger(pg_sessions) == {m.event_id for m in batch}, timeout=30)
        wait_until(lambda: "after_apply" in heard.names())

    assert conflicts.left == 0
    assert not {"on_batch_failed", "on_retry", "on_dead_letter"} & set(heard.names())
    conflicts_heard = [call for call in heard.calls if call[0] == "on_batch_conflict"]
    assert len(conflicts_heard) == 3
    assert all("injected by the test" in call[1] for call in conflicts_heard)
    assert "on_database_outage" not in heard.names()  # the database never went away
    applied = [s for call in heard.calls if call[0] == "after_apply" for s in call[1]]
    assert applied == ["applied"] * len(batch)
    assert broker.depth() == 0 and broker.depth(DEAD_LETTER_QUEUE) == 0
    assert row_count(pg_sessions, Project) == len(batch)
