"""Ingest: signed webhooks through `billsync gateway`, against a bare Flask 202 route.

    python -m tests.benchmarks.bench_ingest [--seconds 30] [--requests 40000]
                                            [--threads 2] [--connections 16]

wrk (``deploy/ensure-wrk.sh``) POSTs pre-signed, distinct webhooks (realistic events,
``workload.realistic``) from a file (``signed_requests.lua``), first at the gateway
(verify, validate, publish with confirm: a 202 means queued), then at ``bare_app``
served by `billsync gateway`'s own gunicorn settings; each after a warm-up (a tenth
of the run; none under 5 s). Figures: requests/s, p50 and p99. Target: gateway
≥ 0.6 × the bare route.
Needs PostgreSQL, RabbitMQ and wrk.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine

from tests.benchmarks.common import (
    billsync_env,
    free_port,
    gateway,
    http_up,
    new_tenant,
    reset_queues,
    settings_for,
    standalone,
    started,
    temporary_database,
)
from tests.benchmarks.report import FULL, Figure, Row, Target
from tests.benchmarks.workload import realistic
from tests.benchmarks.wrk import load, write_requests
from worker.db import migrate

TARGET = 0.6


@contextmanager
def bare_route(database_url: str) -> Iterator[str]:
    """``bare_app`` under `billsync gateway`'s gunicorn settings, on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "tests.benchmarks.bare_app", "--port", str(port)]
    env = billsync_env(database_url)
    with started("bare route", command, env, ready=lambda: http_up(url)):
        yield url


def measure(seconds: float, requests: int, *, threads: int = 2, connections: int = 16) -> list[Row]:
    with temporary_database() as database_url, tempfile.TemporaryDirectory() as tmp:
        settings = settings_for(database_url)
        engine = create_engine(database_url)
        try:
            migrate.upgrade_schema(engine)
            tenant = new_tenant(engine, settings)
        finally:
            engine.dispose()
        reset_queues(settings)
        file = Path(tmp) / "requests.tsv"
        events = realistic(requests, prefix="ingest-")
        distinct = write_requests(file, tenant.webhook_path, tenant.webhook_secret, events)
        with gateway(database_url) as url:
            ours = load(url, file, seconds=seconds, threads=threads, connections=connections)
        reset_queues(settings)  # what the gateway queued
        with bare_route(database_url) as url:
            bare = load(url, file, seconds=seconds, threads=threads, connections=connections)
        reset_queues(settings)

    row = Row(
        key="ingest",
        what=f"`billsync gateway` under wrk -t{threads} -c{connections}, {seconds:.0f} s, "
        "pre-signed webhooks",
        figures=[
            Figure("gateway_rps", "", ours.rate, "req/s"),
            Figure("gateway_p50_ms", "p50", ours.p50_ms, "ms"),
            Figure("gateway_p99_ms", "p99", ours.p99_ms, "ms"),
            Figure("bare_rps", "bare Flask 202:", bare.rate, "req/s", baseline=True),
            Figure("bare_p50_ms", "p50", bare.p50_ms, "ms", baseline=True),
            Figure("bare_p99_ms", "p99", bare.p99_ms, "ms", baseline=True),
        ],
        targets=[Target("/ bare", ours.rate / bare.rate, ">=", TARGET, "×")],
        ratios={"/ bare": ours.rate / bare.rate},
        params={
            "seconds": seconds,
            "threads": threads,
            "connections": connections,
            "distinct_requests": distinct,
            "gateway_requests": ours.requests,
            "bare_requests": bare.requests,
            "gateway_socket_errors": ours.socket_errors,
            "bare_socket_errors": bare.socket_errors,
        },
    )
    if ours.socket_errors or bare.socket_errors:
        row.notes.append(f"socket errors: gateway {ours.socket_errors}, bare {bare.socket_errors}")
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=FULL.ingest_seconds)
    parser.add_argument("--requests", type=int, default=FULL.ingest_requests)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    standalone(
        "ingest",
        lambda: measure(
            args.seconds, args.requests, threads=args.threads, connections=args.connections
        ),
    )


if __name__ == "__main__":
    main()
