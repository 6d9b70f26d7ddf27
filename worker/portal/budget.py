"""The portal's request budget: a token bucket per portal credential.

Zoho Projects allows about 100 API calls per two minutes per user and locks a user
out for a while after that (30 minutes, as the Deluge documentation and public
clients describe: https://www.zoho.com/deluge/help/projects/get-records.html,
Panoptic-IT-Solutions/zoho-projects-client ``src/utils/rate-limiter.ts``). So the
pull paces itself below the budget instead of running into 429s: every request
takes a token; the bucket holds ``calls`` tokens and refills them evenly over
``per_seconds``. A full bucket lets a small sync run at once; a large one settles
at the budget's steady rate.

Buckets are shared per credential within a process (``budget_for``), so two
integrations that use the same Zoho user in one worker share one budget. Clock and
sleep are injected: tests advance time instead of waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RateBudget", "budget_for"]


@dataclass
class RateBudget:
    """``calls`` requests per ``per_seconds``, refilled continuously."""

    calls: int
    per_seconds: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    throttled: bool = False  # the last request had to wait for the budget
    _tokens: float = field(init=False)
    _updated: float = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per_seconds <= 0:
            raise ValueError("a rate budget needs at least one call per positive period")
        self._tokens = float(self.calls)
        self._updated = self.clock()

    @property
    def rate(self) -> float:
        """Steady-state requests per second."""
        return self.calls / self.per_seconds

    def acquire(self) -> float:
        """Take one request's token, sleeping until there is one; returns the wait."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        self.throttled = wait > 0
        if wait:
            self.sleep(wait)
        return wait

    def seconds_for(self, requests: int) -> float:
        """How long ``requests`` more calls take from now at this budget."""
        with self._lock:
            self._refill()
            short = requests - max(self._tokens, 0.0)
        return max(short, 0.0) / self.rate

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(float(self.calls), self._tokens + (now - self._updated) * self.rate)
        self._updated = now


_budgets: dict[tuple[str, int, float], RateBudget] = {}
_budgets_lock = threading.Lock()


def budget_for(key: str, calls: int, per_seconds: float) -> RateBudget:
    """The process's one bucket for the credential ``key`` (a user id, a token hash)."""
    with _budgets_lock:
        found = _budgets.get((key, calls, per_seconds))
        if found is None:
            found = _budgets[(key, calls, per_seconds)] = RateBudget(calls, per_seconds)
        return found
