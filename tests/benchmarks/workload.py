"""The events the benchmarks send: what a portal's day looks like to billsync.

``realistic(n)``: blocks of 40 events, each a new project (with its client), 7 tasks
under it, 30 approved billable time logs under those tasks by one of 20 people, and
2 updates (5 %) of a task and a log made a few blocks earlier, with a newer version.
Every record comes after what it names, as a portal's webhooks do.

``on_seeded(n, …)``: time logs (and 5 % task updates) under projects and tasks already
stored (``seed_projects``), for the sustained end-to-end run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from schemas import QueueMessage
from tests.events import Event, message, project, task, timesheet

__all__ = ["BLOCK", "on_seeded", "queue_messages", "realistic", "seed_projects"]

BLOCK = 40  # events per project in ``realistic``
TASKS, LOGS, UPDATES = 7, 30, 2
PEOPLE = [
    {"id": f"U{n}", "name": f"Person {n}", "email": f"person{n}@example.com"} for n in range(20)
]
BASE = datetime(2026, 11, 1, tzinfo=UTC)
# Updates name records this many blocks (1,200 events) back: never in the same batch
# (the worker's is 200), where the older version would be counted stale, not applied.
UPDATE_DISTANCE = 30


def _at(seconds: float) -> str:
    return (BASE + timedelta(seconds=seconds)).isoformat()


def _log(lid: str, pid: str, tid: str, n: int, at: str, event_id: str) -> Event:
    return timesheet(
        lid,
        pid,
        task_id=tid,
        log_date=(BASE.date() - timedelta(days=n % 60)).isoformat(),
        minutes=15 + (n * 7) % 240,
        owner=PEOPLE[n % len(PEOPLE)],
        at=at,
        event_id=event_id,
    )


def _block(b: int, prefix: str) -> Iterator[Event]:
    pid = f"{prefix}P{b}"
    at = _at(b)
    yield project(pid, at=at, event_id=f"{prefix}e-p{b}")
    for k in range(TASKS):
        yield task(f"{prefix}T{b}-{k}", pid, at=at, event_id=f"{prefix}e-t{b}-{k}")
    # The first blocks have nothing far enough back to update: two more logs instead.
    logs = LOGS if b >= UPDATE_DISTANCE else LOGS + UPDATES
    for k in range(logs):
        tid = f"{prefix}T{b}-{k % TASKS}"
        yield _log(f"{prefix}L{b}-{k}", pid, tid, b * LOGS + k, at, f"{prefix}e-l{b}-{k}")
    if b < UPDATE_DISTANCE:
        return
    earlier = b - UPDATE_DISTANCE
    later = _at(b + 86_400)  # a day on: newer than anything of the earlier block
    yield task(
        f"{prefix}T{earlier}-{b % TASKS}",
        f"{prefix}P{earlier}",
        name=f"Task renamed in block {b}",
        at=later,
        event_id=f"{prefix}e-tu{b}",
    )
    k = b % LOGS
    yield _log(
        f"{prefix}L{earlier}-{k}",
        f"{prefix}P{earlier}",
        f"{prefix}T{earlier}-{k % TASKS}",
        b,
        later,
        f"{prefix}e-lu{b}",
    )


def realistic(count: int, prefix: str = "") -> list[Event]:
    """``count`` events (see the module docstring); ids start with ``prefix``."""
    events: list[Event] = []
    b = 0
    while len(events) < count:
        events.extend(_block(b, prefix))
        b += 1
    return events[:count]


def queue_messages(events: list[Event], integration_id: str) -> list[QueueMessage]:
    """The events as the gateway queues them for ``integration_id``."""
    return [message(e, integration_id) for e in events]


def seed_projects(projects: int, tasks_per_project: int) -> list[Event]:
    """Projects ``S0…`` with ``tasks_per_project`` tasks each, projects first."""
    events: list[Event] = [project(f"SP{p}", event_id=f"seed-p{p}") for p in range(projects)]
    events += [
        task(f"ST{p}-{k}", f"SP{p}", event_id=f"seed-t{p}-{k}")
        for p in range(projects)
        for k in range(tasks_per_project)
    ]
    return events


def on_seeded(
    count: int, projects: int, tasks_per_project: int, prefix: str, seed: int = 1
) -> list[Event]:
    """New time logs under the seeded tasks, and 5 % renames of seeded tasks."""
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(count):
        p, k = rng.randrange(projects), rng.randrange(tasks_per_project)
        at = _at(86_400 * 2 + n)  # newer than the seeded versions
        if n % 20 == 19:
            events.append(
                task(f"ST{p}-{k}", f"SP{p}", name=f"Renamed {n}", at=at, event_id=f"{prefix}u{n}")
            )
        else:
            events.append(_log(f"{prefix}L{n}", f"SP{p}", f"ST{p}-{k}", n, at, f"{prefix}l{n}"))
    return events
