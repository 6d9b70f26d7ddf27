"""The embedded SQLite transport keeps kombu's contract and loses nothing on a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from worker.messaging.embedded import EmbeddedTransport, recover_in_flight

EXCHANGE = Exchange("billsync.events", type="topic")
QUEUE = Queue("billsync.apply", exchange=EXCHANGE, routing_key="#")


def _connection(path: Path) -> Connection:
    return Connection(f"sqlite:///{path}", transport=EmbeddedTransport)


def _publish(path: Path, body: str) -> None:
    with _connection(path) as connection:
        connection.Producer().publish(
            body, exchange=EXCHANGE, routing_key="projects.created", declare=[QUEUE]
        )


def _rows(path: Path) -> list[tuple[int, bool]]:
    with sqlite3.connect(path) as db:
        return [(r[0], bool(r[1])) for r in db.execute("SELECT id, visible FROM kombu_message")]


def test_an_acked_message_is_deleted_not_kept_forever(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite"
    _publish(path, "one")
    with _connection(path) as connection:
        message = connection.SimpleQueue(QUEUE).get(timeout=1)
        message.ack()
    assert _rows(path) == []


def test_a_message_in_flight_when_the_process_died_is_delivered_again(tmp_path: Path) -> None:
    path = tmp_path / "broker.sqlite"
    _publish(path, "one")
    crashed = _connection(path)
    assert crashed.SimpleQueue(QUEUE).get(timeout=1).body == b"one"
    assert [visible for _, visible in _rows(path)] == [False]  # taken, never acked

    assert recover_in_flight(f"sqla+sqlite:///{path}") == 1

    with _connection(path) as connection:
        again = connection.SimpleQueue(QUEUE).get(timeout=1)
        assert again.body == b"one"
        again.ack()
    assert _rows(path) == []
    crashed.collect()


def test_recovering_a_broker_file_that_does_not_exist_yet_finds_nothing(tmp_path: Path) -> None:
    assert recover_in_flight(f"sqla+sqlite:///{tmp_path / 'new.sqlite'}") == 0
