"""What applying costs, asserted structurally (statements, transactions), never timed.

- A 200-event batch of a realistic mix runs a fixed handful of statements, each with
  one text whatever the number of rows (so psycopg prepares it once), and asks nothing
  of the error summary but one existence check while no error is open.
- One poison event in a batch costs about 2·log₂(batch) transactions (bisection), and
  is still retried and dead-lettered as before while the rest is applied.
- A queue message made by billsync is decoded without re-normalising e-mail addresses;
  anything else is validated in full, and refused as before.
- The tables a worker grows are analyzed once they grew enough; the event-id claim
  probes the ledger by key, however large it grew.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.benchmarks.bench_apply import CLIENTS, OWNERS, realistic_events
from tests.conftest import Connected
from tests.events import message, project, timesheet
from tests.support import (
    DEAD_LETTER_QUEUE,
    BrokerProbe,
    Recorder,
    add_integration,
    row_count,
    running,
    wait_until,
)
from worker.cli.runtime import build_consumer
from worker.db import Customer, Project, StaffUser, Timesheet
from worker.messaging import Hooks
from worker.messaging.consumer import decode
from worker.messaging.hooks import LoggingHooks
from worker.messaging.publisher import Publisher
from worker.settings import Settings
from worker.sync import Outcome, apply_batch, refresh_statistics, statistics
from worker.sync.upsert import _CLAIM, claim_events

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"
BATCH = 200

# The statements of one batch of projects, tasks and time logs of one integration with
# no open error, once its customers and staff exist (a new client or a new owner adds
# a lookup and an insert):
#   4  integrations, dependency locks, event-id claim, open-errors check
#   1  every stored record the batch names, all tables in one UNION ALL of = ANY lookups
#   4  projects: the customers of their clients (read, written), the upsert, and the
#      links of rows written before them (backfill: only for projects new to the table)
#   2  tasks: the upsert, the backfill
#   2  time logs: the upsert, their owners as project staff
#   1  per-module activity
# Before: 88 to 104 (a lookup per table and question, a SELECT and an UPDATE per
# project's customer, several error-summary questions, and some 47 multi-row INSERTs
# of the batch's time logs).
MAX_STATEMENTS = 14


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The statements the engine's connections run in the block, as sent."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def batched(messages: Iterator[QueueMessage], size: int) -> Iterator[list[QueueMessage]]:
    while chunk := list(itertools.islice(messages, size)):
        yield chunk


def apply(sessions: sessionmaker[Session], messages: Sequence[QueueMessage]) -> list[Outcome]:
    with sessions.begin() as session:
        return apply_batch(session, messages)


def test_a_batch_of_a_realistic_mix_runs_a_handful_of_statements_of_constant_text(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    add_integration(pg_sessions, INTEGRATION)
    batches = iter(batched(realistic_events(INTEGRATION, 20 * BATCH), BATCH))
    # Until every client is a customer and every owner staff: each new one costs more.
    while row_count(pg_sessions, Customer) < CLIENTS or row_count(pg_sessions, StaffUser) < OWNERS:
        apply(pg_sessions, next(batches))

    with statements(pg_engine) as full:
        outcomes = apply(pg_sessions, next(batches))
    with statements(pg_engine) as smaller:
        apply(pg_sessions, next(batches)[:-37])

    assert {o.status for o in outcomes} <= {"applied", "stale"}
    assert {o.module for o in outcomes} == {"projects", "tasks", "timesheets"}
    assert len(full) <= MAX_STATEMENTS, "\n".join(s.split("\n")[0][:100] for s in full)
    # What writes rows has one text for 200 rows and for 163, and no lookup lists its
    # keys in its text (they go in arrays).
    writes = [s for s in full if s.lstrip().startswith("INSERT")]
    assert len(writes) == 6 and set(writes) <= set(smaller)
    assert not [s for s in full + smaller if " IN (" in s]
    # The error summary is asked once, whether any error is open.
    assert [s for s in full if "sync_errors" in s] == [s for s in full if "EXISTS" in s]
    assert len([s for s in full if "sync_errors" in s]) == 1


def test_the_same_batch_on_sqlite_has_the_same_outcomes(
    sqlite_sessions: sessionmaker[Session], pg_sessions: sessionmaker[Session]
) -> None:
    stream = list(realistic_events(INTEGRATION, 2 * BATCH))
    results = []
    for sessions in (add_integration(pg_sessions), add_integration(sqlite_sessions)):
        results.append(
            [
                o.status
                for start in (0, BATCH)
                for o in apply(sessions, stream[start : start + BATCH])
            ]
        )
    assert results[0] == results[1]
    assert results[0].count("applied") > BATCH


# -- bisecting a failed batch -----------------------------------------------------------


@pytest.fixture
def poison_refused(pg_engine: Engine, pg_sessions: sessionmaker[Session]) -> Iterator[None]:
    """The database refuses the project "POISON", every time."""
    with pg_engine.begin() as connection:
        connection.execute(
            text("ALTER TABLE projects ADD CONSTRAINT test_poison CHECK (source_id <> 'POISON')")
        )
    yield
    with pg_engine.begin() as connection:
        connection.execute(text("ALTER TABLE projects DROP CONSTRAINT test_poison"))


class Transactions(Hooks):
    """Counts the transactions the consumer opens, and when the poison was first held."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.before_first_retry: int | None = None

    def before_apply(self, messages: Sequence[QueueMessage]) -> None:
        self.sizes.append(len(messages))

    def on_retry(self, message: Any, error: BaseException, attempt: int, delay: float) -> None:
        if self.before_first_retry is None:
            self.before_first_retry = len(self.sizes)


def test_one_poison_event_in_a_batch_costs_a_logarithm_of_transactions_not_one_each(
    integration: Connected,
    settings: Settings,
    poison_refused: None,
    publisher: Publisher,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    size = 64
    one_batch = settings.model_copy(
        update={"batch_size": size, "prefetch": 2 * size, "batch_max_wait_ms": 5000}
    )
    batch = [message(project(f"P{n}"), integration.id, f"ok-{n}") for n in range(size - 1)]
    batch.insert(size // 3, message(project("POISON"), integration.id, "poison"))
    publisher.publish(batch)
    wait_until(lambda: broker.depth() == size)
    counted, applied = Transactions(), Recorder()
    with running(build_consumer(one_batch, pg_sessions, hooks=[counted, applied])):
        wait_until(lambda: broker.depth(DEAD_LETTER_QUEUE) == 1, timeout=30)
        wait_until(lambda: applied.seen == size - 1)

    assert counted.sizes[0] == size  # it came as one batch
    # The batch, then a pair of halves per level down to the poison.
    assert counted.before_first_retry is not None
    assert counted.before_first_retry <= 1 + 2 * math.ceil(math.log2(size))
    assert sorted(applied.statuses()) == ["applied"] * (size - 1)
    with pg_sessions() as session:
        assert len(session.scalars(select(Project.source_id)).all()) == size - 1
    dead = broker.get(DEAD_LETTER_QUEUE)
    assert dead is not None
    assert dead[1].headers["event-id"] == "poison"
    assert dead[1].headers["x-billsync-error-class"] == "IntegrityError"
    # Held unacked through its attempts: no multiple ack of the others covered it.
    assert dead[1].headers["x-billsync-attempts"] == settings.apply_max_attempts
    assert broker.depth() == 0


# -- decoding ---------------------------------------------------------------------------


def test_a_message_billsync_made_is_decoded_as_it_was_validated() -> None:
    made = message(timesheet("L1", "P1", task_id="T1"), INTEGRATION, "e-1")
    assert decode(made.model_dump_json()) == made


def test_only_a_replayed_message_has_its_addresses_normalised_again() -> None:
    owner = {"id": "U1", "name": "Asha", "email": "Asha@Example.COM"}
    built = timesheet("L1", "P1", owner=owner)
    for source, email in (("webhook", "Asha@Example.COM"), ("replay", "Asha@example.com")):
        body = message(built, INTEGRATION, "e-1").model_dump(mode="json")
        body["source"] = source
        body["event"]["data"]["owner"]["email"] = "Asha@Example.COM"
        assert decode(json.dumps(body)).event.data.owner.email == email  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "broken",
    [
        lambda body: body["event"]["data"]["owner"].update(email="no address"),
        lambda body: body["event"]["data"].update(minutes=-5),
        lambda body: body["event"].update(module="gadgets"),
        lambda body: body.pop("integration_id"),
        lambda body: body["event"]["data"].update({"extra\x00key": 1}),
        lambda body: body["event"]["data"]["owner"].update(name="Asha\x00"),
    ],
)
def test_an_invalid_body_is_refused_with_the_full_validations_errors(broken: Any) -> None:
    body = message(timesheet("L1", "P1"), INTEGRATION, "e-1").model_dump(mode="json")
    broken(body)
    raw = json.dumps(body)
    with pytest.raises(ValidationError) as full:
        QueueMessage.model_validate_json(raw)
    with pytest.raises(ValidationError) as decoded:
        decode(raw)
    assert decoded.value.errors() == full.value.errors()


# -- one log line per batch -------------------------------------------------------------


def test_a_batch_is_logged_in_one_line_with_its_outcome_counts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = [
        Outcome(f"e-{n}", INTEGRATION, "projects", "updated", "applied" if n else "stale")
        for n in range(5)
    ]
    with caplog.at_level(logging.INFO, logger="worker.messaging.consumer"):
        LoggingHooks().after_apply([], outcomes, 0.012)
    (record,) = caplog.records
    assert record.getMessage() == "batch of 5 applied: 4 applied, 1 stale"
    assert record.fields["outcomes"] == {"applied": 4, "stale": 1}  # type: ignore[attr-defined]


# -- statistics -------------------------------------------------------------------------


def analyze_count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"),
                {"t": table},
            )
            or 0
        )


def test_a_table_the_worker_grew_is_analyzed_once_it_grew_enough(
    pg_engine: Engine, pg_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "MIN_ROWS", 20)
    add_integration(pg_sessions, INTEGRATION)
    refresh_statistics(pg_sessions.begin)  # whatever earlier tests grew
    before = analyze_count(pg_engine, Timesheet.__tablename__)

    apply(pg_sessions, list(realistic_events(INTEGRATION, 10)))
    assert Timesheet.__tablename__ not in refresh_statistics(pg_sessions.begin)  # too few
    apply(pg_sessions, list(realistic_events(INTEGRATION, BATCH))[10:])
    analyzed = refresh_statistics(pg_sessions.begin)

    assert Timesheet.__tablename__ in analyzed
    wait_until(lambda: analyze_count(pg_engine, Timesheet.__tablename__) > before)
    assert refresh_statistics(pg_sessions.begin) == []  # nothing grew since


def test_an_integration_growing_inside_a_large_table_gets_the_table_analyzed() -> None:
    growth = statistics._Growth()
    growth.size["timesheets"] = 1_000_000.0  # a fifth of it is far away
    growth.inserted["timesheets"] = statistics.MIN_ROWS
    growth.by_integration[("timesheets", "old")] = [statistics.MIN_ROWS - 1, 50_000]
    assert growth.due() == []
    growth.by_integration[("timesheets", "new")] = [statistics.MIN_ROWS, 0]
    assert growth.due() == ["timesheets"]
    growth.analyzed(["timesheets"])
    assert growth.by_integration[("timesheets", "new")] == [0, statistics.MIN_ROWS]
    assert growth.due() == []


def test_claiming_event_ids_probes_the_ledger_by_key_however_large_it_grew(
    pg_engine: Engine, pg_sessions: sessionmaker[Session]
) -> None:
    """The claim looks each id up in every partition's key; it never reads the whole
    ledger, which keeps weeks of ids (a plain anti-join was planned as a hash of it)."""
    add_integration(pg_sessions, INTEGRATION)
    for start in range(0, 20_000, BATCH):  # as batches claim them: a lock per id
        with pg_sessions.begin() as session:
            claim_events(session, [(INTEGRATION, f"old-{n}") for n in range(start, start + BATCH)])
    rows = json.dumps([{"i": INTEGRATION, "e": f"new-{n}"} for n in range(BATCH)])

    with pg_engine.connect() as connection:
        plan = connection.execute(
            text("EXPLAIN " + _CLAIM.text), {"rows": rows, "now": "2026-12-01T00:00:00Z"}
        ).scalars()
        scans = [line.strip() for line in plan if "Scan" in line and " on processed_events" in line]

    assert scans, "the plan reads no partition at all"
    assert all(line.startswith("->  Index") for line in scans), scans
