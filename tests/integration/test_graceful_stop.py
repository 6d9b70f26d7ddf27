"""SIGTERM, as an orchestrator stops a process: `billsync worker` and `billsync gateway`
finish what they hold, lose nothing, send nothing back to be delivered again, exit 0.

What is "in flight" is made so deterministically, never by sleeping: the worker's batch
waits for an advisory lock the test holds (seen waiting in ``pg_stat_activity``); the
gateway's requests wait for the broker's confirms, which a proxy in front of RabbitMQ
holds back (their messages seen in the queue). Each process is then sent SIGTERM, the
line it logs on hearing it is waited for, and only then is the hold released.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from schemas import Module
from tests.conftest import Connected
from tests.events import message, project, webhook_body
from tests.processes import BillsyncProcess, billsync_env, spawned
from tests.support import (
    DEAD_LETTER_QUEUE,
    BrokerProbe,
    add_integration,
    signed_headers,
    wait_until,
)
from tests.tcp_proxy import TcpProxy
from worker.db import ProcessedEvent
from worker.messaging.publisher import Publisher
from worker.settings import Settings
from worker.sync.writers.locks import lock_key

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"

# -- the worker -------------------------------------------------------------------------

PUBLISHED = 40
PREFETCH = 10  # two batches: one in hand, one received behind it
WORKER_SETTINGS = {
    "batch_size": 5,
    "prefetch": PREFETCH,
    "batch_max_wait_ms": 20,
    "db_lock_timeout_seconds": 120,  # the held lock is waited for, not given up on
}


def ledger(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(ProcessedEvent.event_id)))


def waiting_for_an_advisory_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
            )
        ).scalar_one()
    return bool(waiting)


def queued(broker: BrokerProbe) -> list[tuple[str, bool]]:
    """Take every message left in the apply queue: (event id, redelivered), in order."""
    found = []
    while (got := broker.get()) is not None:
        method, properties, _ = got
        found.append((properties.headers["event-id"], bool(method.redelivered)))
    return found


@pytest.fixture
def worker(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    tmp_path: Path,
) -> Iterator[BillsyncProcess]:
    add_integration(pg_sessions, INTEGRATION)
    publisher.declare_topology()
    env = billsync_env(settings, **WORKER_SETTINGS)
    with spawned(["worker"], env, tmp_path / "worker.log") as process:
        yield process


def test_a_worker_sent_sigterm_mid_batch_finishes_it_and_sends_nothing_back(
    worker: BillsyncProcess,
    publisher: Publisher,
    broker: BrokerProbe,
    pg_engine: Engine,
    pg_sessions: sessionmaker[Session],
) -> None:
    stream = [message(project(f"P{n}"), INTEGRATION, f"e-{n:02}") for n in range(PUBLISHED)]
    with pg_engine.connect() as holder:
        # The first message's record is locked: whatever the first batch holds, it waits.
        holder.execute(
            text("SELECT pg_advisory_lock(:key)"),
            {"key": lock_key(INTEGRATION, Module.PROJECTS, "P0")},
        )
        publisher.publish(stream)
        wait_until(lambda: waiting_for_an_advisory_lock(pg_engine), timeout=60)
        # The worker holds a whole prefetch window: the batch in hand and one behind it.
        wait_until(lambda: broker.depth() == PUBLISHED - PREFETCH, timeout=60)
        assert ledger(pg_sessions) == set()  # the batch is in hand, not committed

        worker.terminate()
        wait_until(lambda: "worker stopping" in worker.text(), timeout=60)
        assert worker.popen.poll() is None and waiting_for_an_advisory_lock(pg_engine)
        holder.execute(text("SELECT pg_advisory_unlock_all()"))
        holder.commit()

    assert worker.wait(60) == 0, worker.text()[-3000:]
    applied = ledger(pg_sessions)
    left = queued(broker)
    # What the worker had received, the batch in hand and the one behind it, is applied
    # and acked; the rest is in the queue in order, never delivered: nothing came back.
    # (Had the batch committed before the worker saw its stop flag, a few more would
    # have been received, and applied too.)
    taken = len(applied)
    assert taken >= PREFETCH
    assert applied == {m.event_id for m in stream[:taken]}
    assert left == [(m.event_id, False) for m in stream[taken:]]
    assert broker.depth(DEAD_LETTER_QUEUE) == 0


# -- the gateway ------------------------------------------------------------------------

REQUESTS = 3
GRACEFUL_TIMEOUT = 30  # gunicorn's default graceful_timeout, which billsync sets to it
STOPPING = "stopping on SIGTERM"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def broker_proxy(broker_url: str) -> Iterator[TcpProxy]:
    url = make_url(broker_url.replace("amqp://", "postgresql://", 1))
    with TcpProxy((url.host or "127.0.0.1", url.port or 5672)) as proxy:
        yield proxy


@pytest.fixture
def gateway(
    settings: Settings,
    integration: Connected,
    broker_proxy: TcpProxy,
    broker: BrokerProbe,
    tmp_path: Path,
) -> Iterator[tuple[BillsyncProcess, str]]:
    port = free_port()
    url = make_url(settings.broker_url.replace("amqp://", "postgresql://", 1))
    through_proxy = settings.broker_url.replace(f":{url.port or 5672}", f":{broker_proxy.port}", 1)
    env = billsync_env(
        settings.model_copy(update={"broker_url": through_proxy}),
        publish_confirm_timeout_seconds=90,  # a held confirm is waited for, not given up on
    )
    arguments = ["gateway", "--port", str(port), "--workers", "1", "--threads", "8"]
    base = f"http://127.0.0.1:{port}"
    with spawned(arguments, env, tmp_path / "gateway.log") as process:
        wait_until(lambda: healthy(base), timeout=60, interval=0.2)
        yield process, base


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).is_success
    except httpx.HTTPError:
        return False


def send(base: str, integration: Connected, event_id: str) -> httpx.Response:
    body = webhook_body(project(f"P-{event_id}", event_id=event_id))
    return httpx.post(
        f"{base}{integration.url}",
        content=body,
        headers=signed_headers(integration.secret, body),
        timeout=120,
    )


def test_a_gateway_sent_sigterm_answers_the_requests_in_flight_then_exits(
    gateway: tuple[BillsyncProcess, str],
    integration: Connected,
    broker_proxy: TcpProxy,
    broker: BrokerProbe,
) -> None:
    process, base = gateway
    # The gateway's publishing connection is up (through the proxy) before it is held.
    assert send(base, integration, "warm-up").status_code == 202
    broker_proxy.hold_replies()  # messages reach RabbitMQ; their confirms do not come back

    answers: dict[str, httpx.Response | BaseException] = {}

    def request(event_id: str) -> None:
        try:
            answers[event_id] = send(base, integration, event_id)
        except BaseException as exc:  # reported by the test thread
            answers[event_id] = exc

    ids = [f"in-flight-{n}" for n in range(REQUESTS)]
    threads = [threading.Thread(target=request, args=(event_id,)) for event_id in ids]
    for thread in threads:
        thread.start()
    # Every request's message is in the queue: each one waits for its confirm.
    wait_until(lambda: broker.depth() == 1 + REQUESTS, timeout=60)
    assert not answers

    process.terminate()
    stopping = time.monotonic()
    wait_until(lambda: STOPPING in process.text(), timeout=60)
    assert process.popen.poll() is None and not answers
    broker_proxy.release_replies()

    for thread in threads:
        thread.join(timeout=120)
    assert process.wait(GRACEFUL_TIMEOUT + 30) == 0, process.text()[-3000:]
    exited_after = time.monotonic() - stopping

    statuses = {event_id: _status(answer) for event_id, answer in answers.items()}
    assert statuses == dict.fromkeys(ids, 202), statuses
    left = sorted(event_id for event_id, _ in queued(broker))
    assert left == sorted(["warm-up", *ids])
    assert exited_after < GRACEFUL_TIMEOUT  # a failure bound: it did not wait it out


def _status(answer: Any) -> int | str:
    return answer.status_code if isinstance(answer, httpx.Response) else repr(answer)
