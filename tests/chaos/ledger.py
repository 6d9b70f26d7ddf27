"""The chaos ledger: a realistic history of portal changes and the state it must end in.

Projects (each with its primary client), tasks under them and time logs on the tasks,
each record changed several times (strictly increasing ``modified_at``), some tasks
and logs deleted at the end of their history. Every event is meant to be sent twice
and the whole list shuffled, so children routinely arrive before their parents and
old versions after new ones. The oracle is what the history implies: per record its
newest version, or nothing when that is a delete. All events fit the sync rules
(billable, approved logs by people with e-mail addresses; deleted tasks carry no
logs), so a correct run ends with no open error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.events import Event, event

__all__ = ["EVENT_ID_PREFIX", "Expected", "Ledger", "make_ledger"]

START = datetime(2026, 11, 1, tzinfo=UTC)
EVENT_ID_PREFIX = "chaos-"
PEOPLE = [
    {"id": f"U{n}", "name": f"Person {n}", "email": f"person{n}@example.com"} for n in range(8)
]


@dataclass(frozen=True)
class Expected:
    """A record's final state: its newest version and what identifies it, or deleted."""

    module: str
    source_id: str
    modified_at: datetime
    label: str | int | None  # project and task name, log minutes
    deleted: bool


@dataclass
class Ledger:
    events: list[dict[str, Any]]  # each one once, in history order
    expected: dict[tuple[str, str], Expected] = field(default_factory=dict)

    def deliveries(self, seed: int) -> list[dict[str, Any]]:
        """Every event twice, shuffled: the order webhooks may arrive in."""
        doubled = [*self.events, *self.events]
        random.Random(seed).shuffle(doubled)
        return doubled


def make_ledger(size: int, *, seed: int = 0) -> Ledger:
    """At least ``size`` events: projects, each with its tasks and their logs (about 50
    events a project), added until there are enough."""
    rng = random.Random(seed)
    clock = _Clock()
    ledger = Ledger(events=[])
    p = 0
    while len(ledger.events) < size:
        p += 1
        pid = f"P{p}"
        client = {"id": f"C{p % 7}", "name": f"Client {p % 7}", "currency_code": "USD"}
        _versions(
            ledger,
            clock,
            rng,
            "projects",
            pid,
            lambda v, pid=pid, client=client: {
                "id": pid,
                "name": f"Project {pid} v{v}",
                "primary_client": client,
            },
        )
        for t in range(4):
            tid = f"{pid}-T{t}"
            doomed_task = t == 3 and rng.random() < 0.5  # deleted; so it has no logs
            _versions(
                ledger,
                clock,
                rng,
                "tasks",
                tid,
                lambda v, pid=pid, tid=tid: {
                    "id": tid,
                    "project_id": pid,
                    "name": f"Task {tid} v{v}",
                },
                delete=doomed_task,
                project_id=pid,
            )
            if doomed_task:
                continue
            for n in range(5):
                lid = f"{tid}-L{n}"
                owner = rng.choice(PEOPLE)
                _versions(
                    ledger,
                    clock,
                    rng,
                    "timesheets",
                    lid,
                    lambda v, pid=pid, tid=tid, lid=lid, owner=owner: {
                        "id": lid,
                        "project_id": pid,
                        "task_id": tid,
                        "log_date": "2026-11-20",
                        "minutes": 30 * v,
                        "bill_status": "Billable",
                        "approval_status": "Approved",
                        "owner": owner,
                    },
                    delete=rng.random() < 0.1,
                    project_id=pid,
                )
    return ledger


class _Clock:
    """Strictly increasing source times, a second apart."""

    def __init__(self) -> None:
        self.now = START

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _versions(
    ledger: Ledger,
    clock: _Clock,
    rng: random.Random,
    module: str,
    source_id: str,
    data_of: Any,
    *,
    delete: bool = False,
    project_id: str | None = None,
) -> None:
    """1–3 versions of one record (created, then updated), maybe a delete last."""
    last: dict[str, Any] = {}
    at = START
    for version in range(1, rng.randint(1, 3) + 1):
        at = clock.tick()
        last = data_of(version)
        action = "created" if version == 1 else "updated"
        ledger.events.append(_event(module, action, at, last, f"{source_id}-v{version}"))
    label = last.get("minutes") if module == "timesheets" else last.get("name")
    if delete:
        at = clock.tick()
        data = (
            {"id": source_id} if project_id is None else {"id": source_id, "project_id": project_id}
        )
        ledger.events.append(_event(module, "deleted", at, data, f"{source_id}-deleted"))
    ledger.expected[(module, source_id)] = Expected(module, source_id, at, label, delete)


def _event(module: str, action: str, at: datetime, data: dict[str, Any], key: str) -> Event:
    return event(
        module,
        data,
        action=action,
        at=at.isoformat().replace("+00:00", "Z"),
        event_id=f"{EVENT_ID_PREFIX}{module}-{key}",
    )
