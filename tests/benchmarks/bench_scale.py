"""Scale, for sizing: events/s with 1, 2 and 3 `billsync worker` processes, requests/s
with 1 and 2 `billsync gateway` processes, and the CPU time each costs, theirs and the
servers'.

    python -m tests.benchmarks.bench_scale [--events 20000] [--seconds 30] [--requests 40000]
                                           [--threads 2] [--connections 16]

Workers: for 1, 2 and 3 processes in turn, each run on a fresh database, the same
realistic events (``workload.realistic``, as ``bench_worker``) are queued first,
untimed; then the processes start together, consuming the one queue, and the time runs
from all of them consuming to the last event settled (what the first settled while
the others came up is left out of the count). Figures: events/s of each, / 1 worker;
for 1 worker, CPU seconds per 1,000 events of the worker process, of PostgreSQL (all
its processes; and of which the backends of the run's database) and of RabbitMQ
(beam.smp), read from /proc/<pid>/stat over the same time.
Gateways: wrk (``signed_requests.lua``) POSTs pre-signed webhooks of realistic events
(as ``bench_ingest``) to `billsync gateway --workers 1`, then ``--workers 2`` (gunicorn
processes; the other settings its defaults), each after a warm-up (a tenth of the run;
none under 5 s). Figures: requests/s of each, / 1 process, and CPU seconds per 1,000
requests of the gateway's processes and of RabbitMQ over the measured run.
No targets: these figures size a deployment. The servers' CPU time counts all their
work meanwhile, this benchmark's polling too: run it on an otherwise idle machine.
Needs PostgreSQL, RabbitMQ and wrk; the servers on this machine for their CPU figures.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.benchmarks.common import (
    CpuMeter,
    Drained,
    bench_engine,
    drain,
    gateway_process,
    group_cpu,
    new_tenant,
    processed,
    reset_queues,
    server_cpu,
    settings_for,
    settled,
    standalone,
    temporary_database,
)
from tests.benchmarks.report import FULL, Figure, Row
from tests.benchmarks.workload import queue_messages, realistic
from tests.benchmarks.wrk import WrkResult, load, write_requests
from tests.events import Event
from worker.db import IntegrationActivity, SyncError, migrate

WORKERS = (1, 2, 3)
GATEWAYS = (1, 2)
PER = 1000  # CPU seconds are given per this many events or requests
# Labels of the CPU parts (common.server_cpu's, and the billsync processes').
PARTS = {
    "worker": "worker",
    "gateway": "gateway",
    "postgresql": "PostgreSQL",
    "postgresql_database": "of which the run's database's backends",
    "rabbitmq": "RabbitMQ",
}


def _drained(
    events: list[Event], workers: int, template: str
) -> tuple[Drained, dict[str, int], list[str]]:
    """``workers`` processes draining ``events`` on a fresh database (a copy of the
    migrated ``template``): the drain; the events refused, the errors left open after
    (refusals not healed) and the events stale; notes on what CPU could not be read."""
    with temporary_database(template) as database_url:
        settings = settings_for(database_url)
        engine = bench_engine(database_url)
        try:
            tenant = new_tenant(engine, settings)
            messages = queue_messages(events, tenant.integration_id)
            servers, notes = server_cpu(engine)
            drained = drain(
                engine, database_url, settings, tenant, messages, workers=workers, cpu=servers
            )
            with engine.connect() as connection:
                refused = connection.scalar(
                    select(func.coalesce(func.sum(IntegrationActivity.refused), 0)).where(
                        IntegrationActivity.integration_id == tenant.integration_id
                    )
                )
                still_open = connection.scalar(
                    select(func.count())
                    .select_from(SyncError)
                    .where(SyncError.integration_id == tenant.integration_id, ~SyncError.resolved)
                )
            # Taken after a newer version of their record: in no tally (see drain).
            stale = processed(engine, tenant.integration_id) - settled(
                engine, tenant.integration_id
            )
        finally:
            engine.dispose()
        reset_queues(settings)
    outcomes = {"refused": int(refused or 0), "errors_open": int(still_open or 0), "stale": stale}
    return drained, outcomes, notes


def _served(
    database_url: str, file: Path, processes: int, seconds: float, threads: int, connections: int
) -> tuple[WrkResult, dict[str, float], list[str]]:
    """wrk against `billsync gateway --workers <processes>`: its result, CPU seconds by
    part over the measured run, and notes on what CPU could not be read."""
    engine = bench_engine(database_url)
    try:
        servers, notes = server_cpu(engine)
        with gateway_process(database_url, "--workers", str(processes)) as (url, process):
            meter = CpuMeter({"gateway": group_cpu(process.pid), **servers})
            result = load(
                url, file, seconds=seconds, threads=threads, connections=connections, meter=meter
            )
            process.check()
    finally:
        engine.dispose()
    return result, meter.used, notes


def _per(cpu: dict[str, float], count: int) -> dict[str, float]:
    return {part: seconds / count * PER for part, seconds in cpu.items()}


def measure(
    events: int, seconds: float, requests: int, *, threads: int = 2, connections: int = 16
) -> list[Row]:
    workload = realistic(events, prefix="s-")
    drains: dict[int, Drained] = {}
    outcomes: dict[int, dict[str, int]] = {}
    notes: list[str] = []
    with temporary_database() as template:
        engine = bench_engine(template)
        try:
            migrate.upgrade_schema(engine)
        finally:
            engine.dispose()
        for n in WORKERS:
            drains[n], outcomes[n], missing = _drained(workload, n, template)
            notes += [note for note in missing if note not in notes]

        served: dict[int, tuple[WrkResult, dict[str, float]]] = {}
        with temporary_database(template) as database_url, tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(database_url)
            engine = bench_engine(database_url)
            try:
                tenant = new_tenant(engine, settings)
            finally:
                engine.dispose()
            reset_queues(settings)
            file = Path(tmp) / "requests.tsv"
            webhooks = realistic(requests, prefix="scale-")
            distinct = write_requests(file, tenant.webhook_path, tenant.webhook_secret, webhooks)
            for n in GATEWAYS:
                result, cpu, missing = _served(database_url, file, n, seconds, threads, connections)
                served[n] = (result, cpu)
                notes += [note for note in missing if note not in notes]
                reset_queues(settings)  # what the gateway queued

    one_worker, one_gateway = drains[1].rate, served[1][0].rate
    figures = [
        Figure("workers_1_eps", "1 worker:", one_worker, "events/s", baseline=True),
        *(
            Figure(f"workers_{n}_eps", f"{n} workers:", drains[n].rate, "events/s")
            for n in WORKERS[1:]
        ),
        *_cpu_figures(
            "workers_1", "CPU per 1,000 events, 1 worker:", drains[1].cpu, drains[1].counted
        ),
        Figure("gateways_1_rps", "1 gateway process:", one_gateway, "req/s", baseline=True),
        *(
            Figure(f"gateways_{n}_rps", f"{n} gateway processes:", served[n][0].rate, "req/s")
            for n in GATEWAYS[1:]
        ),
    ]
    for n in GATEWAYS:
        result, cpu = served[n]
        heading = f"CPU per 1,000 requests, {n} gateway process{'es' if n > 1 else ''}:"
        parts = {k: v for k, v in cpu.items() if k in ("gateway", "rabbitmq")}
        figures += _cpu_figures(f"gateways_{n}", heading, parts, result.requests)

    ratios = {f"{n} workers / 1": drains[n].rate / one_worker for n in WORKERS[1:]}
    ratios |= {f"{n} gateway processes / 1": served[n][0].rate / one_gateway for n in GATEWAYS[1:]}
    params: dict[str, Any] = {
        "events": events,
        "seconds": seconds,
        "requests": requests,
        "threads": threads,
        "connections": connections,
        "distinct_requests": distinct,
        "cpu_per": PER,
        "workers": {str(n): _drain_params(drains[n], outcomes[n]) for n in WORKERS},
        "gateways": {str(n): _served_params(*served[n]) for n in GATEWAYS},
    }
    row = Row(
        key="scale",
        what=f"for sizing: {events:,} realistic events drained by 1–{WORKERS[-1]} "
        f"`billsync worker` processes; pre-signed webhooks through `billsync gateway` "
        f"with 1–{GATEWAYS[-1]} processes (wrk -t{threads} -c{connections}, {seconds:.0f} s)",
        figures=figures,
        ratios=ratios,
        params=params,
        notes=notes,
    )
    for n in WORKERS[1:]:
        if drains[n].counted < drains[n].events * 0.9:
            early = drains[n].events - drains[n].counted
            row.notes.append(
                f"{n} workers: {early:,} events settled while they came up "
                f"({drains[n].stagger:.2f} s), left out of the count"
            )
    for n, counts in outcomes.items():
        if any(counts.values()):
            # Several workers: a time log refused for a task another worker had yet to
            # write is healed when it is written (an error left open is not).
            row.notes.append(
                f"{n} worker{'s' if n > 1 else ''}: {counts['refused']} events refused, "
                f"{counts['errors_open']} errors open at the end, {counts['stale']} stale"
            )
    for n in GATEWAYS:
        if served[n][0].socket_errors:
            row.notes.append(f"{n} gateway processes: {served[n][0].socket_errors} socket errors")
    return [row]


def _cpu_figures(key: str, heading: str, cpu: dict[str, float], count: int) -> list[Figure]:
    """CPU seconds per 1,000 of ``count``, a figure a part; the first one headed."""
    figures: list[Figure] = []
    for part, value in _per(cpu, count).items():
        label = PARTS[part] if figures else f"{heading} {PARTS[part]}"
        figures.append(Figure(f"{key}_{part}_cpu_s_per_1k", label, value, "s"))
    return figures


def _drain_params(drained: Drained, outcomes: dict[str, int]) -> dict[str, Any]:
    per = _per(drained.cpu, drained.counted)
    return {
        "events_per_s": round(drained.rate, 1),
        "seconds": round(drained.seconds, 3),
        "counted": drained.counted,
        "stagger_seconds": round(drained.stagger, 3),
        **outcomes,
        "cpu_seconds": {k: round(v, 3) for k, v in drained.cpu.items()},
        "cpu_seconds_per_1k": {k: round(v, 4) for k, v in per.items()},
        # How busy each part was: CPU seconds per second (1.0: one core all the time).
        "cores_busy": {k: round(v / drained.seconds, 3) for k, v in drained.cpu.items()},
        "events_per_worker_cpu_s": round(PER / per["worker"], 1) if per.get("worker") else None,
    }


def _served_params(result: WrkResult, cpu: dict[str, float]) -> dict[str, Any]:
    return {
        "requests_per_s": round(result.rate, 1),
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "socket_errors": result.socket_errors,
        "cpu_seconds": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_seconds_per_1k": {k: round(v, 4) for k, v in _per(cpu, result.requests).items()},
        "cores_busy": {k: round(v / result.seconds, 3) for k, v in cpu.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=FULL.worker_events)
    parser.add_argument("--seconds", type=float, default=FULL.ingest_seconds)
    parser.add_argument("--requests", type=int, default=FULL.ingest_requests)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    standalone(
        "scale",
        lambda: measure(
            args.events,
            args.seconds,
            args.requests,
            threads=args.threads,
            connections=args.connections,
        ),
    )


if __name__ == "__main__":
    main()
