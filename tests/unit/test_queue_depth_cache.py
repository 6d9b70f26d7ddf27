"""Status answers reuse the queue depths they read from the broker for a second or two
(``QueueDepthCache``), on a clock the tests move by hand."""

from __future__ import annotations

import threading

from webhook_gateway.services import QueueDepthCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Answers depths that grow with every read, so a test sees which read it got."""

    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> dict[str, int | None]:
        self.reads += 1
        return {"backlog": self.reads, "dead_letter_queue": None}


def test_depths_are_read_once_then_reused_until_they_are_as_old_as_allowed() -> None:
    clock, broker = Clock(), Broker()
    cache = QueueDepthCache(broker.read, 2.0, clock)

    assert cache.get() == {"backlog": 1, "dead_letter_queue": None}
    clock.now += 1.999
    assert cache.get()["backlog"] == 1
    clock.now += 0.001
    assert cache.get()["backlog"] == 2
    assert broker.reads == 2


def test_an_unknown_depth_is_kept_too_so_a_dead_broker_is_not_asked_by_every_answer() -> None:
    clock, broker = Clock(), Broker()
    cache = QueueDepthCache(broker.read, 2.0, clock)

    cache.get()
    cache.get()
    assert cache.get()["dead_letter_queue"] is None
    assert broker.reads == 1


def test_with_no_cache_time_every_answer_reads() -> None:
    clock, broker = Clock(), Broker()
    cache = QueueDepthCache(broker.read, 0, clock)

    assert [cache.get()["backlog"] for _ in range(3)] == [1, 2, 3]


def test_a_caller_gets_a_copy_it_may_change() -> None:
    cache = QueueDepthCache(Broker().read, 2.0, Clock())

    cache.get()["backlog"] = 99
    assert cache.get()["backlog"] == 1


def test_while_one_caller_reads_the_others_answer_with_the_previous_depths() -> None:
    clock = Clock()
    reading, release = threading.Event(), threading.Event()
    reads = []

    def slow_read() -> dict[str, int | None]:
        reads.append(1)
        if len(reads) == 2:  # the second read waits until the test lets it go
            reading.set()
            release.wait()
        return {"backlog": len(reads), "dead_letter_queue": 0}

    cache = QueueDepthCache(slow_read, 2.0, clock)
    cache.get()
    clock.now += 5
    results: list[int | None] = []
    reader = threading.Thread(target=lambda: results.append(cache.get()["backlog"]))
    reader.start()
    reading.wait()

    assert cache.get()["backlog"] == 1  # stale, but answered without waiting
    release.set()
    reader.join()
    assert results == [2]
    assert cache.get()["backlog"] == 2
    assert len(reads) == 2


def test_callers_arriving_together_at_the_start_read_once() -> None:
    clock = Clock()
    reading, release = threading.Event(), threading.Event()
    reads = []

    def slow_read() -> dict[str, int | None]:
        reads.append(1)
        reading.set()
        release.wait()
        return {"backlog": 7, "dead_letter_queue": 0}

    cache = QueueDepthCache(slow_read, 2.0, clock)
    results: list[int | None] = []
    first = threading.Thread(target=lambda: results.append(cache.get()["backlog"]))
    first.start()
    reading.wait()
    second = threading.Thread(target=lambda: results.append(cache.get()["backlog"]))
    # Nothing cached yet: during the first read it waits for it; after, it reuses it.
    second.start()
    release.set()
    first.join()
    second.join()

    assert results == [7, 7]
    assert len(reads) == 1
