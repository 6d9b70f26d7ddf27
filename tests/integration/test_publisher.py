"""Publishing with confirms on real RabbitMQ: bulk batches (pull, replay, webhook arrays)
and concurrent callers sharing one publishing thread, each waiting for its own confirms."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pika
import pytest

from schemas import QueueMessage
from tests.events import message, project, user
from tests.support import BrokerProbe, wait_until
from tests.tcp_proxy import broker_through_proxy
from worker.errors import BrokerUnavailable
from worker.messaging.publisher import Publisher
from worker.messaging.topology import EVENTS_EXCHANGE, build_topology
from worker.settings import Settings


def messages(count: int) -> list[QueueMessage]:
    return [message(project(f"P{n}"), "i-1", f"bulk-{n}", source="pull") for n in range(count)]


def test_a_batch_is_published_whole_persistent_and_with_its_headers(
    publisher: Publisher, broker: BrokerProbe
) -> None:
    publisher.publish(messages(500))

    wait_until(lambda: broker.depth() == 500)
    got = broker.get()
    assert got is not None
    _method, properties, body = got
    assert properties.delivery_mode == 2
    assert properties.headers["source"] == "pull"
    assert json.loads(body)["event_id"] == "bulk-0"


def test_a_batch_to_a_broker_that_stops_answering_fails_within_the_confirm_timeout(
    settings: Settings, broker: BrokerProbe
) -> None:
    proxy, proxied = broker_through_proxy(settings)
    with proxy:
        publisher = Publisher(proxied, build_topology(proxied))
        publisher.publish(messages(2))  # connected and declared
        proxy.cut()
        started = time.monotonic()

        with pytest.raises(BrokerUnavailable):
            publisher.publish(messages(200))

        assert time.monotonic() - started < 15
        proxy.restore()
        publisher.close()


# -- one publishing thread per process, each caller its own confirms -------------------


def _queued_event_ids(broker: BrokerProbe) -> set[str]:
    ids = set()
    while (got := broker.get()) is not None:
        ids.add(got[1].headers["event-id"])
    return ids


def _at_once(count: int, publish: Callable[[int], None]) -> dict[int, BaseException | None]:
    """``publish(n)`` for n in range(count), from ``count`` threads released together."""
    start = threading.Barrier(count)

    def one(n: int) -> BaseException | None:
        start.wait()
        try:
            publish(n)
        except BaseException as exc:
            return exc
        return None

    with ThreadPoolExecutor(count) as pool:
        return dict(enumerate(pool.map(one, range(count))))


@pytest.fixture
def users_refused(broker_url: str) -> Iterator[None]:
    """A queue bound to the events exchange for users events that holds nothing: RabbitMQ
    nacks every publish routed to it (``x-overflow: reject-publish``), and only those."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    channel = connection.channel()
    channel.exchange_declare(EVENTS_EXCHANGE, "topic", durable=True)
    channel.queue_declare(FULL_QUEUE, arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
    channel.queue_bind(FULL_QUEUE, EVENTS_EXCHANGE, "users.#")
    try:
        yield
    finally:
        channel.queue_delete(FULL_QUEUE)
        connection.close()


FULL_QUEUE = "billsync.test-full"


@pytest.mark.usefixtures("users_refused")
def test_concurrent_callers_each_get_their_own_confirm(
    publisher: Publisher, broker: BrokerProbe
) -> None:
    def publish(n: int) -> None:
        event = project(f"P{n}") if n % 2 == 0 else user(f"U{n}")
        publisher.publish([message(event, "i-1", f"c-{n}")])

    outcomes = _at_once(40, publish)

    # Published back to back on one channel, nacked and acked in one stream: each
    # caller got the answer to its own message.
    assert {n for n, error in outcomes.items() if error is None} == set(range(0, 40, 2))
    for n in range(1, 40, 2):
        assert isinstance(outcomes[n], BrokerUnavailable)
        assert "refused" in str(outcomes[n])
    # (A nack says some queue refused the message: the apply queue took them all.)
    assert {f"c-{n}" for n in range(0, 40, 2)} <= _queued_event_ids(broker)


@pytest.mark.usefixtures("users_refused")
def test_a_nack_fails_its_request_whole_and_the_next_ones_go_through(
    publisher: Publisher, broker: BrokerProbe
) -> None:
    with pytest.raises(BrokerUnavailable, match="refused"):
        publisher.publish(
            [message(project(), "i-1", "with"), message(user(), "i-1", "a-refused-one")]
        )

    publisher.publish([message(project(), "i-1", "after")])
    # The request's other message may be queued: its caller retries, and the consumer
    # dedupes on event ids.
    assert "after" in _queued_event_ids(broker)


def test_a_connection_dropped_mid_flight_fails_those_requests_and_later_ones_succeed(
    settings: Settings, broker: BrokerProbe
) -> None:
    proxy, proxied = broker_through_proxy(settings)
    with proxy:
        publisher = Publisher(proxied, build_topology(proxied))
        publisher.publish([message(project(), "i-1", "before")])
        proxy.partition()  # what is published now waits for its confirm
        with ThreadPoolExecutor(5) as pool:
            pending = [
                pool.submit(publisher.publish, [message(project(), "i-1", f"lost-{n}")])
                for n in range(5)
            ]
            wait_until(lambda: publisher.in_flight == 5)
            proxy.cut()  # the connection drops with the five unconfirmed; no new one

            for future in pending:
                with pytest.raises(BrokerUnavailable, match="connection lost|unreachable"):
                    future.result(timeout=30)

        proxy.restore()
        publisher.publish([message(project(), "i-1", "after")])
        # The lost ones may or may not have reached the broker (never confirmed, so
        # their callers were told to retry); the later one did.
        assert {"before", "after"} <= _queued_event_ids(broker)
        publisher.close()


def test_a_forked_process_publishes_through_a_thread_of_its_own(
    settings: Settings, broker: BrokerProbe
) -> None:
    publisher = Publisher(settings, build_topology(settings))
    publisher.publish([message(project(), "i-1", "parent-before")])  # the parent's thread

    child = os.fork()  # as gunicorn forks its workers
    if child == 0:
        try:
            publisher.publish([message(project(), "i-1", "child")])
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    publisher.publish([message(project(), "i-1", "parent-after")])
    assert _queued_event_ids(broker) == {"parent-before", "child", "parent-after"}
    publisher.close()
