"""What the blueprints share, kept in ``app.extensions["billsync"]``.

The webhook credentials cache is a bounded LRU: unknown integration ids are cached
too (so a flood of them costs no query each), and the bound keeps such a flood from
growing the process. While the database is unreachable an entry past its freshness
is still served (stale-if-error): webhooks of known integrations keep being accepted
into the broker, which is what lets nothing be lost in a database outage.

The queue depths every status answer shows are read from the broker at most once per
``BILLSYNC_QUEUE_DEPTHS_CACHE_SECONDS`` per process (``QueueDepthCache``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from worker.db import is_unavailable
from worker.errors import DatabaseUnavailable
from worker.integrations import WebhookCredentials, webhook_credentials
from worker.messaging import APPLY_QUEUE, DEAD_LETTER_QUEUE, Publisher
from worker.settings import Settings

__all__ = ["CredentialsCache", "QueueDepthCache", "Services", "services"]


class _Depths(NamedTuple):
    fresh_until: float
    depths: dict[str, int | None]


class QueueDepthCache:
    """The shared queues' depths, read from the broker at most once per ``seconds``.

    Every status answer shows them, and reading them costs two broker round trips per
    answer; dashboards poll, and depths a second or two old tell them as much. One
    caller reads while the others answer with the depths it is replacing (only the
    first caller of a process waits). ``clock`` is injectable so tests need no sleep;
    ``seconds=0`` reads every time. Whatever the read gives is kept, an unknown (None)
    depth too: a broker that cannot answer is not asked again by every status call.
    """

    def __init__(
        self,
        read: Callable[[], dict[str, int | None]],
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._seconds = seconds
        self._clock = clock
        self._cached: _Depths | None = None
        self._reading = threading.Lock()

    def get(self) -> dict[str, int | None]:
        cached = self._cached
        if cached is not None and self._clock() < cached.fresh_until:
            return dict(cached.depths)
        # Another caller reading already: its predecessor's depths will do (if any).
        if not self._reading.acquire(blocking=cached is None):
            assert cached is not None  # a blocking acquire always succeeds
            return dict(cached.depths)
        try:
            cached = self._cached  # read meanwhile by the caller this one waited for?
            now = self._clock()
            if cached is not None and now < cached.fresh_until:
                return dict(cached.depths)
            depths = self._read()
            self._cached = _Depths(now + self._seconds, depths)
            return dict(depths)
        finally:
            self._reading.release()


class _Cached(NamedTuple):
    fresh_until: float
    credentials: WebhookCredentials | None


class CredentialsCache:
    """Webhook credentials by integration id: least recently used out past ``max_entries``.

    Thread-safe: gunicorn's threads share one per process.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, integration_id: str) -> _Cached | None:
        with self._lock:
            entry = self._entries.get(integration_id)
            if entry is not None:
                self._entries.move_to_end(integration_id)
            return entry

    def put(self, integration_id: str, entry: _Cached) -> None:
        with self._lock:
            self._entries[integration_id] = entry
            self._entries.move_to_end(integration_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


@dataclass(frozen=True)
class Services:
    settings: Settings
    sessions: sessionmaker[Session]
    publisher: Publisher

    _credentials: CredentialsCache = field(init=False, repr=False)
    _queue_depths: QueueDepthCache = field(init=False, repr=False)

    def __post_init__(self) -> None:
        cache = CredentialsCache(self.settings.credentials_cache_max_entries)
        object.__setattr__(self, "_credentials", cache)  # frozen: set once, here
        depths = QueueDepthCache(self._read_queue_depths, self.settings.queue_depths_cache_seconds)
        object.__setattr__(self, "_queue_depths", depths)

    @property
    def credentials_cache(self) -> CredentialsCache:
        return self._credentials

    def credentials(self, integration_id: str, *, fresh: bool = False) -> WebhookCredentials | None:
        """An integration's webhook credentials, cached for a few seconds.

        Webhooks for one integration come in bursts; caching spares two queries per
        request. A caller whose check failed asks again with ``fresh=True``, so a
        rotated secret works at once; a deletion is seen within the cache time.

        When the database cannot answer, a cached entry is served however old it
        is (``fresh=True`` included: it cannot be refreshed); without one,
        DatabaseUnavailable.
        """
        now = time.monotonic()
        cached = self._credentials.get(integration_id)
        if cached is not None and not fresh and cached.fresh_until > now:
            return cached.credentials
        try:
            with self.read() as session:
                found = webhook_credentials(session, integration_id, self.settings)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            if cached is not None:
                return cached.credentials
            raise DatabaseUnavailable(str(exc)) from exc
        ttl = self.settings.credentials_cache_seconds
        self._credentials.put(integration_id, _Cached(now + ttl, found))
        return found

    def queue_depths(self) -> dict[str, int | None]:
        """The shared queues' depths (every integration's events go through them), at
        most ``queue_depths_cache_seconds`` old."""
        return self._queue_depths.get()

    def _read_queue_depths(self) -> dict[str, int | None]:
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
