"""Integration status latency on a big integration, optionally while the worker applies.

    python -m tests.benchmarks.bench_status [--time-logs 1000000] [--errors 50000]
                                            [--dead-letters 20000] [--calls 1000]
                                            [--load 300] [--json PATH]

Seeds a temporary database with one integration holding ``--time-logs`` time logs
(one in 20 deleted), ``--errors`` sync errors (one in 10 resolved) and
``--dead-letters`` dead letters, each table in a few ``INSERT … SELECT
generate_series`` statements, then ANALYZEs it (the server runs without autovacuum)
and CHECKPOINTs (its pages are written before the calls, not during them).
Then times ``GET /api/v1/integrations/<id>/status`` through the app (test client,
real PostgreSQL and RabbitMQ) ``--calls`` times, after a warm-up, and prints p50,
p90, p99 and max in milliseconds; the target is p99 ≤ 50 ms with the default sizes
under load. ``--load N`` publishes N new time logs per second meanwhile (from a
process of its own), applied by ``billsync worker`` (0: no load); the figures say how
many were published and applied during the calls. ``--json PATH`` also writes them.
Small sizes (``--time-logs 10000 --errors 500 --calls 100``) make a smoke run.
Needs PostgreSQL and RabbitMQ, found as the test suite finds them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, func, select, text

from tests import servers
from tests.benchmarks.common import temporary_database
from tests.events import message, project, timesheet
from webhook_gateway import create_app
from worker.accounts.organizations import create_organization
from worker.db import Integration, IntegrationActivity, make_sessionmaker, migrate
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings
from worker.sync import apply_batch

BIN = Path(sys.executable).parent
SEED_CHUNK = 100_000  # rows per INSERT … SELECT
WARM_UP = 20
LOAD_BATCH = 50  # time logs per publish of the background load
LOAD_PROJECTS = 50  # synced projects the load's time logs belong to

TIME_LOGS = """
INSERT INTO timesheets (organization_id, integration_id, source_id, source_modified_at,
    deleted, payload, created_at, updated_at, project_source_id, task_source_id,
    staff_source_id, log_date, minutes, bill_status, approval_status, billing_status)
SELECT :org, :integration, 'L' || n, timestamptz '2026-01-01' + n * interval '1 second',
    n % 20 = 0, jsonb_build_object('id', 'L' || n, 'minutes', 30 + n % 90), now(), now(),
    'P' || n % 500, 'T' || n % 5000, 'U' || n % 40, date '2026-01-01' + n % 300,
    30 + n % 90, 'Billable', 'Approved', 'unbilled'
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n
"""

ERRORS = """
INSERT INTO sync_errors (integration_id, module, source_id, reason, message, resolution,
    count, first_seen, last_seen, resolved)
SELECT :integration, (ARRAY['timesheets', 'tasks', 'projects'])[1 + n % 3], 'E' || n,
    (ARRAY['task_missing', 'project_missing', 'staff_unknown'])[1 + n % 3],
    'The record cannot be synced.', 'Sync what it needs first.', 1 + n % 4, now(), now(),
    n % 10 = 0
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n
"""

DEAD_LETTERS = """
INSERT INTO dead_letters (integration_id, event_id, module, action, routing_key,
    error_class, error_message, traceback, attempts, dead_at, body, headers)
SELECT :integration, 'dead-' || n, 'timesheets', 'updated', 'timesheets.updated',
    'OperationalError', 'deadlock detected', repeat('  File "x.py", line 1\n', 40), 5, now(),
    '{"event_id": "dead-' || n || '"}', '{}'::jsonb
FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n
"""


def _seed(engine: Engine, args: argparse.Namespace) -> tuple[str, str]:
    """An organization's admin token and its integration, with the stored rows."""
    sessions = make_sessionmaker(engine)
    integration_id = str(uuid.uuid4())
    with sessions.begin() as session:
        organization, token = create_organization(session, "bench")
        org_id = organization.id
        session.add(
            Integration(
                id=integration_id,
                organization_id=org_id,
                portal_id="portal-bench",
                status="active",
                modules=["timesheets"],
            )
        )
    with sessions.begin() as session:  # the load's time logs need their projects synced
        apply_batch(
            session,
            [message(project(f"P{n}"), integration_id, f"p-{n}") for n in range(LOAD_PROJECTS)],
        )
    ids = {"org": org_id, "integration": integration_id}
    for statement, total in (
        (TIME_LOGS, args.time_logs),
        (ERRORS, args.errors),
        (DEAD_LETTERS, args.dead_letters),
    ):
        for first in range(1, total + 1, SEED_CHUNK):
            last = min(total, first + SEED_CHUNK - 1)
            with engine.begin() as connection:
                connection.execute(text(statement), {**ids, "first": first, "last": last})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))
        # The seed's dirty pages are written now, not by a checkpoint during the calls.
        connection.execute(text("CHECKPOINT"))
    return token, integration_id


def _publish_load(
    broker_url: str, integration_id: str, rate: float, stop: Any, published: Any
) -> None:
    """New time logs at ``rate`` per second, in batches, until ``stop`` is set (in a
    process of its own, as the gateway would publish them: not competing with the
    measured calls for this process's interpreter)."""
    settings = Settings(broker_url=broker_url, database_url="sqlite://")
    publisher = Publisher(settings, build_topology(settings))
    started = time.monotonic()
    sent = 0
    try:
        while not stop.is_set():
            batch = [
                message(
                    timesheet(f"N{sent + k}", f"P{k % LOAD_PROJECTS}"),
                    integration_id,
                    f"load-{sent + k}",
                )
                for k in range(LOAD_BATCH)
            ]
            publisher.publish(batch)
            sent += LOAD_BATCH
            published.value = sent
            # Paced by the schedule, not by each batch's own time.
            delay = started + sent / rate - time.monotonic()
            if delay > 0:
                stop.wait(delay)
    finally:
        publisher.close()


@contextmanager
def _load(
    settings: Settings, engine: Engine, integration_id: str, rate: float
) -> Iterator[Callable[[], int]]:
    """The load publishing and ``billsync worker`` applying it, from the moment the
    worker applies; yields how many the load published (so far; all of them once the
    block has ended)."""
    if rate <= 0:
        yield lambda: 0
        return
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")},
        "BILLSYNC_DATABASE_URL": settings.database_url,
        "BILLSYNC_BROKER_URL": settings.broker_url,
        "BILLSYNC_CREDENTIAL_KEY": Fernet.generate_key().decode(),
        "BILLSYNC_LOG_LEVEL": "WARNING",
        "BILLSYNC_METRICS_PORT": str(_free_port()),
    }
    worker = subprocess.Popen([str(BIN / "billsync"), "worker"], env=env, stdout=subprocess.DEVNULL)
    spawn = multiprocessing.get_context("spawn")
    stop, published = spawn.Event(), spawn.Value("q", 0)
    publisher = spawn.Process(
        target=_publish_load,
        args=(settings.broker_url, integration_id, rate, stop, published),
        daemon=True,
    )
    publisher.start()
    try:
        deadline = time.monotonic() + 120
        while _applied(engine, integration_id) == 0:  # the worker starts in a second or two
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("billsync worker applied nothing of the load")
            time.sleep(0.1)
        yield lambda: int(published.value)
    finally:
        stop.set()
        publisher.join(timeout=30)
        worker.terminate()
        worker.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _applied(engine: Engine, integration_id: str) -> int:
    with engine.connect() as connection:
        total = connection.scalar(
            select(func.sum(IntegrationActivity.applied)).where(
                IntegrationActivity.integration_id == integration_id,
                IntegrationActivity.module == "timesheets",  # the load's, not the seed's
            )
        )
    return int(total or 0)


def _percentile(sorted_ms: list[float], fraction: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(fraction * len(sorted_ms)))]


def _measure(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    engine = create_engine(database_url, pool_size=10)
    migrate.upgrade_schema(engine)
    started = time.perf_counter()
    token, integration_id = _seed(engine, args)
    seeded = time.perf_counter() - started
    settings = Settings(database_url=database_url, broker_url=servers.rabbitmq_url())
    publisher = Publisher(settings, build_topology(settings))
    publisher.declare_topology()
    app = create_app(settings, publisher=publisher, sessions=make_sessionmaker(engine))
    client = app.test_client()
    url = f"/api/v1/integrations/{integration_id}/status"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with _load(settings, engine, integration_id, args.load) as published:
            applied_before, published_before = _applied(engine, integration_id), published()
            timings = []
            for n in range(WARM_UP + args.calls):
                before = time.perf_counter()
                response = client.get(url, headers=auth)
                elapsed = time.perf_counter() - before
                if response.status_code != 200:
                    raise SystemExit(f"status answered {response.status_code}")
                if n >= WARM_UP:
                    timings.append(elapsed * 1000)
            last = response.get_json()
            applied = _applied(engine, integration_id) - applied_before
        load_published = published() - published_before  # final: the load has stopped
    finally:
        publisher.close()
        engine.dispose()
    timings.sort()
    return {
        "time_logs": args.time_logs,
        "errors": args.errors,
        "dead_letters": args.dead_letters,
        "calls": args.calls,
        "load_per_s": args.load,
        "load_published": load_published,
        "load_applied": applied,
        "seed_seconds": round(seeded, 1),
        "p50_ms": _percentile(timings, 0.50),
        "p90_ms": _percentile(timings, 0.90),
        "p99_ms": _percentile(timings, 0.99),
        "max_ms": timings[-1],
        "mean_ms": statistics.fmean(timings),
        "synced_time_logs": last["modules"]["timesheets"]["synced"],
        "open_errors": sum(m["errors"] for m in last["modules"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-logs", type=int, default=1_000_000)
    parser.add_argument("--errors", type=int, default=50_000)
    parser.add_argument("--dead-letters", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument(
        "--load", type=float, default=300, help="Time logs published per second (0: none)."
    )
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    try:
        with temporary_database() as url:
            figures = _measure(args, url)
    finally:
        servers.stop_all()
    print(
        f"stored         {figures['time_logs']:,} time logs, {figures['errors']:,} errors, "
        f"{figures['dead_letters']:,} dead letters (seeded in {figures['seed_seconds']} s)"
    )
    print(
        f"load           {figures['load_per_s']:,.0f} time logs/s published; during the "
        f"calls {figures['load_published']:,} published, {figures['load_applied']:,} applied"
    )
    print(
        f"status         p50 {figures['p50_ms']:.1f} ms  p90 {figures['p90_ms']:.1f} ms  "
        f"p99 {figures['p99_ms']:.1f} ms  max {figures['max_ms']:.1f} ms  "
        f"({figures['calls']:,} calls)"
    )
    print(f"target: p99 ≤ 50 ms: {'met' if figures['p99_ms'] <= 50 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
