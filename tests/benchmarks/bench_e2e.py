"""End to end and status under load: webhook → row visible at a fixed rate, and
GET /api/v1/integrations/<id>/status meanwhile, over a large stored history.

    python -m tests.benchmarks.bench_e2e [--seconds 30] [--rate 500]
                                         [--projects 1000] [--time-logs 1000000] [--errors 50000]

First the history is stored (``seed``: projects × 10 tasks through the real apply,
then the time logs and open errors copied in SQL). Then `billsync gateway` and
`billsync worker` run, and for ``--seconds``:
  - wrk (``signed_requests.lua``, paced to a constant rate) sends pre-signed webhooks
    of new approved billable time logs under the stored tasks, 5 % task renames;
  - this process sends 25 more webhooks a second (sampled time logs, part of the rate)
    and LISTENs for them: a trigger on ``timesheets`` NOTIFYs when a sampled row is
    inserted, delivered when its transaction commits, i.e. when the row is visible.
    Webhook → row visible is the time from sending the request to that notification;
  - this process asks for the integration's status 10 times a second.
Figures: p50 and p99 of webhook → row visible (target ≤ 20 ms, ≤ 100 ms at 500
webhooks/s), of the 202 itself (wrk), and of status (target p99 ≤ 50 ms).
Needs PostgreSQL, RabbitMQ and wrk.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from tests.benchmarks.common import (
    QueueWatch,
    Tenant,
    gateway,
    new_tenant,
    percentile,
    reset_queues,
    settings_for,
    standalone,
    temporary_database,
    wait_for,
    worker,
)
from tests.benchmarks.report import FULL, Figure, Row, Target
from tests.benchmarks.seed import TASKS_PER_PROJECT, seed
from tests.benchmarks.workload import on_seeded
from tests.benchmarks.wrk import run_wrk, warm_up_seconds, write_requests
from tests.events import timesheet, webhook_body
from tests.support import signed_headers
from worker.db import migrate

SAMPLES_PER_S = 25
STATUS_PER_S = 10
CHANNEL = "bench_visible"
SAMPLE = "sample-"
E2E_P50_MS, E2E_P99_MS, STATUS_P99_MS = 20, 100, 50
CONNECTIONS = 64  # the paced rate holds while a request takes up to 120 ms


def _install_visibility_trigger(engine: Engine) -> None:
    """NOTIFY ``bench_visible`` with the source id of each sampled time log inserted:
    PostgreSQL delivers it when the inserting transaction commits."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION bench_visible() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN PERFORM pg_notify('{CHANNEL}', NEW.source_id); RETURN NULL; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER bench_visible AFTER INSERT ON timesheets FOR EACH ROW "
                f"WHEN (NEW.source_id LIKE '{SAMPLE}%') EXECUTE FUNCTION bench_visible()"
            )
        )


class _Threads:
    """Threads beside wrk; an exception in one is raised after the run, not swallowed."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def start(self, name: str, target: Callable[[], None]) -> threading.Thread:
        def run() -> None:
            try:
                target()
            except Exception as exc:
                self.failures.append(f"{name}: {type(exc).__name__}: {exc}")

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def check(self) -> None:
        if self.failures:
            raise RuntimeError("; ".join(self.failures))


def _paced(stop: threading.Event, per_second: float, step: Callable[[], None]) -> None:
    """``step`` ``per_second`` times a second until ``stop``."""
    interval, due = 1 / per_second, time.perf_counter()
    while not stop.is_set():
        step()
        due += interval
        stop.wait(max(0.0, due - time.perf_counter()))


class _Listener:
    """When each sampled row became visible (its NOTIFY arrived)."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._connection = psycopg.connect(url.render_as_string(hide_password=False))
        self._connection.autocommit = True
        self._connection.execute(f"LISTEN {CHANNEL}")
        self.visible: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for notify in self._connection.notifies(timeout=0.2):
                self.visible.setdefault(notify.payload, time.perf_counter())

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class _Sample:
    source_id: str
    body: bytes
    headers: dict[str, str]


def _samples(tenant: Tenant, count: int, projects: int) -> list[_Sample]:
    """Signed webhooks of approved billable time logs under stored tasks."""
    samples = []
    for n in range(count):
        p, k = n % projects, n % TASKS_PER_PROJECT
        source_id = f"{SAMPLE}{n}"
        body = webhook_body(
            timesheet(source_id, f"SP{p}", task_id=f"ST{p}-{k}", event_id=f"e-{source_id}")
        )
        samples.append(_Sample(source_id, body, signed_headers(tenant.webhook_secret, body)))
    return samples


def measure(seconds: float, rate: int, projects: int, time_logs: int, errors: int) -> list[Row]:
    with temporary_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(database_url)
        engine = create_engine(database_url)
        try:
            migrate.upgrade_schema(engine)
            tenant = new_tenant(engine, settings)
            seeding = time.perf_counter()
            seeded = seed(engine, tenant, projects, time_logs, errors)
            seeding = time.perf_counter() - seeding
            _install_visibility_trigger(engine)
        finally:
            engine.dispose()
        reset_queues(settings)

        wrk_rate = rate - SAMPLES_PER_S
        warm_seconds = warm_up_seconds(seconds)
        warm, load = Path(tmp) / "warm.tsv", Path(tmp) / "load.tsv"
        for path, prefix, duration in ((warm, "warm-", warm_seconds), (load, "load-", seconds)):
            count = int(wrk_rate * duration * 1.2) + 100
            events = on_seeded(count, projects, TASKS_PER_PROJECT, prefix)
            write_requests(path, tenant.webhook_path, tenant.webhook_secret, events)
        samples = _samples(tenant, int(SAMPLES_PER_S * seconds * 1.5) + 10, projects)

        watch = QueueWatch(settings.broker_url)
        listener = _Listener(database_url)
        try:
            with worker(database_url) as process, gateway(database_url) as url:
                wait_for(lambda: watch.ready_and_consumers()[1] > 0, 60, "worker consuming")
                if warm_seconds:
                    run_wrk(url, warm, seconds=warm_seconds, connections=CONNECTIONS, rate=wrk_rate)
                figures = _under_load(url, load, tenant, samples, listener, seconds, wrk_rate)
                # What the worker had not taken yet when the load stopped: a backlog
                # that grows means the rate was more than it keeps up with.
                backlog = watch.ready_and_consumers()[0]
                process.check()
        finally:
            listener.close()
            watch.close()
        reset_queues(settings)

    e2e, status, wrk, sent, offered = figures
    lost = sent - len(e2e)
    params = {
        "seconds": seconds,
        "rate": rate,
        "offered_rate": round(offered, 1),
        "samples_sent": sent,
        "samples_visible": len(e2e),
        "backlog_at_end": backlog,
        "status_requests": len(status),
        "seeded_projects": seeded.projects,
        "seeded_tasks": seeded.tasks,
        "seeded_time_logs": seeded.time_logs,
        "seeded_errors": seeded.errors,
        "seeding_seconds": round(seeding, 1),
    }
    e2e_row = Row(
        key="e2e",
        what=f"webhook → time log visible, {rate} webhooks/s offered for {seconds:.0f} s",
        figures=[
            Figure("e2e_p50_ms", "p50", percentile(e2e, 50), "ms"),
            Figure("e2e_p99_ms", "p99", percentile(e2e, 99), "ms"),
            Figure("offered_rate", "at", offered, "webhooks/s"),
            Figure("http_p50_ms", "202: p50", wrk.p50_ms, "ms"),
            Figure("http_p99_ms", "202: p99", wrk.p99_ms, "ms"),
        ],
        targets=[
            Target("p50", percentile(e2e, 50), "<=", E2E_P50_MS, "ms"),
            Target("p99", percentile(e2e, 99), "<=", E2E_P99_MS, "ms"),
        ],
        params=params,
    )
    if lost:
        e2e_row.notes.append(f"{lost} of {sent} sampled rows not visible within 30 s")
    status_row = Row(
        key="status",
        what=f"GET /api/v1/integrations/<id>/status under that load; {seeded.time_logs:,} "
        f"time logs, {seeded.errors:,} errors stored",
        figures=[
            Figure("status_p50_ms", "p50", percentile(status, 50), "ms"),
            Figure("status_p99_ms", "p99", percentile(status, 99), "ms"),
        ],
        targets=[Target("p99", percentile(status, 99), "<=", STATUS_P99_MS, "ms")],
        params=params,
    )
    return [e2e_row, status_row]


def _under_load(
    url: str,
    load: Path,
    tenant: Tenant,
    samples: list[_Sample],
    listener: _Listener,
    seconds: float,
    wrk_rate: int,
) -> tuple[list[float], list[float], Any, int, float]:
    """wrk at ``wrk_rate`` with the samples and the status requests beside it."""
    sent: dict[str, float] = {}
    status: list[float] = []
    pending = iter(samples)
    webhooks = httpx.Client(base_url=url, timeout=30)
    api = httpx.Client(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {tenant.admin_token}"}
    )
    status_path = f"/api/v1/integrations/{tenant.integration_id}/status"

    def send_sample() -> None:
        sample = next(pending)
        started = time.perf_counter()
        answer = webhooks.post(tenant.webhook_path, content=sample.body, headers=sample.headers)
        if answer.status_code != 202:
            raise RuntimeError(f"sample answered {answer.status_code}: {answer.text[:300]}")
        sent[sample.source_id] = started

    def ask_status() -> None:
        started = time.perf_counter()
        answer = api.get(status_path)
        if answer.status_code != 200:
            raise RuntimeError(f"status answered {answer.status_code}: {answer.text[:300]}")
        status.append((time.perf_counter() - started) * 1000)

    threads = _Threads()
    sending, listening = threading.Event(), threading.Event()
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # the listener's timestamps wait less for the GIL
    try:
        listen = threads.start("listener", lambda: listener.run(listening))
        senders = [
            threads.start("samples", lambda: _paced(sending, SAMPLES_PER_S, send_sample)),
            threads.start("status", lambda: _paced(sending, STATUS_PER_S, ask_status)),
        ]
        started = time.perf_counter()
        result = run_wrk(url, load, seconds=seconds, connections=CONNECTIONS, rate=wrk_rate)
        elapsed = time.perf_counter() - started
        sending.set()
        for thread in senders:
            thread.join(timeout=30)
        try:  # the last samples may still be on their way
            wait_for(lambda: all(s in listener.visible for s in sent), 30, "samples visible")
        except TimeoutError:
            pass  # counted as not visible below
        listening.set()
        listen.join(timeout=30)
    finally:
        sending.set()
        listening.set()
        sys.setswitchinterval(switch)
        webhooks.close()
        api.close()
    threads.check()
    if result.errors["status"]:
        raise RuntimeError(f"{result.errors['status']} webhooks were not answered 2xx")
    e2e = [(listener.visible[s] - t) * 1000 for s, t in sent.items() if s in listener.visible]
    if not e2e or not status:
        raise RuntimeError(f"nothing measured: {len(e2e)} samples visible, {len(status)} status")
    offered = (result.requests + len(sent)) / elapsed
    return e2e, status, result, len(sent), offered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=FULL.e2e_seconds)
    parser.add_argument("--rate", type=int, default=FULL.e2e_rate)
    parser.add_argument("--projects", type=int, default=FULL.seed_projects)
    parser.add_argument("--time-logs", type=int, default=FULL.seed_time_logs)
    parser.add_argument("--errors", type=int, default=FULL.seed_errors)
    args = parser.parse_args()
    standalone(
        "end to end and status",
        lambda: measure(args.seconds, args.rate, args.projects, args.time_logs, args.errors),
    )


if __name__ == "__main__":
    main()
