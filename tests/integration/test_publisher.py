"""Bulk publishing (pull, replay, webhook arrays): pipelined confirms on real RabbitMQ."""

from __future__ import annotations

import json
import time

import pytest

from schemas import QueueMessage
from tests.events import message, project
from tests.support import BrokerProbe, wait_until
from tests.tcp_proxy import broker_through_proxy
from worker.errors import BrokerUnavailable
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
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
