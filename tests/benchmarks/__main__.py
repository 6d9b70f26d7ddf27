"""Every benchmark row, each against its baseline measured in the same run.

    python -m tests.benchmarks [--only ingest,worker,e2e,status,pull,replay,rss,scale]
                               [--size full|smoke] [--duration SECONDS] [--json PATH]

Rows (each also runs alone: ``python -m tests.benchmarks.<script>``):
  ingest  bench_ingest   `billsync gateway` under wrk vs a bare Flask 202 route
  worker  bench_worker   `billsync worker` draining realistic events vs raw upsert, per-event
  e2e     bench_e2e      webhook → row visible at a constant 500 webhooks/s
  status  bench_e2e      GET …/status meanwhile, over 1M stored time logs, 50k errors
  pull    bench_pull     initial pull of the fake portal vs reading its pages
  replay  bench_replay   `billsync dlq replay --all` vs bulk publish of the same bodies
  rss     bench_rss      `billsync worker`'s memory over 100,000 events
  scale   bench_scale    for sizing: 1, 2, 3 workers' events/s, 1 and 2 gateway processes'
                         req/s, and the CPU seconds per 1,000 of theirs and the servers'
Prints the table and, with --json, writes every figure with the date, the machine
and the command. ``--size smoke`` runs everything small, in about a minute (the CI
test ``tests/integration/test_benchmarks_smoke.py``): it keeps the benchmarks alive,
its figures mean little. ``--duration`` sets the wrk runs' seconds (ingest, e2e, scale).
Exit status 1 when a row failed to measure (a missed target is not a failure).
Needs PostgreSQL, RabbitMQ and wrk (``bash deploy/ensure-wrk.sh``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
from rich.console import Console
from sqlalchemy import create_engine, text

from tests import servers
from tests.benchmarks import (
    bench_e2e,
    bench_ingest,
    bench_pull,
    bench_rss,
    bench_scale,
    bench_worker,
)
from tests.benchmarks.common import ROOT, broker_url, end_with_parent
from tests.benchmarks.report import SIZES, Figure, Row, Size, Target, print_rows, write_json

ROWS = ("ingest", "worker", "e2e", "status", "pull", "replay", "rss", "scale")
WHAT = {
    "ingest": "ingest: `billsync gateway` under wrk",
    "worker": "worker: `billsync worker` draining realistic events",
    "e2e": "end to end: webhook → row visible",
    "status": "GET /api/v1/integrations/<id>/status under load",
    "pull": "initial pull from the fake portal",
    "replay": "`billsync dlq replay --all`",
    "rss": "worker RSS",
    "scale": "for sizing: workers' and gateway processes' throughput and CPU",
}
REPLAY_TARGET = 2000  # dead letters/s


def replay(dead_letters: int) -> list[Row]:
    """``bench_replay`` (its own script and JSON), as a row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "replay.json"
        command = [sys.executable, "-m", "tests.benchmarks.bench_replay"]
        command += ["--dead-letters", str(dead_letters), "--json", str(out)]
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
            preexec_fn=end_with_parent,
        )
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"bench_replay exited with {done.returncode}: {done.stderr.strip()[-2000:]}"
            )
        figures: dict[str, Any] = json.loads(out.read_text())
    try:
        cli, bulk = float(figures["cli_per_s"]), float(figures["bulk_publish_per_s"])
    except KeyError as exc:
        raise RuntimeError(f"bench_replay's JSON has no {exc}: {sorted(figures)}") from exc
    row = Row(
        key="replay",
        what=f"`billsync dlq replay --all` of {dead_letters:,} dead letters "
        "(wall time, start-up included)",
        figures=[
            Figure("replay_cli_per_s", "", cli, "/s"),
            Figure("bulk_publish_per_s", "bulk publish of the same bodies:", bulk, "/s", True),
        ],
        targets=[Target("", cli, ">=", REPLAY_TARGET, "/s")],
        ratios={"/ bulk publish": cli / bulk},
        params={"dead_letters": dead_letters, **figures},
    )
    if "function_per_s" in figures:
        row.figures.insert(
            1, Figure("replay_function_per_s", "replay() alone", figures["function_per_s"], "/s")
        )
    return [row]


def _groups(
    size: Size, duration: float | None
) -> list[tuple[tuple[str, ...], Callable[[], list[Row]]]]:
    """Which rows each measurement gives (e2e and status are one run)."""
    return [
        (
            ("ingest",),
            lambda: bench_ingest.measure(duration or size.ingest_seconds, size.ingest_requests),
        ),
        (("worker",), lambda: bench_worker.measure(size.worker_events, size.per_event_events)),
        (
            ("e2e", "status"),
            lambda: bench_e2e.measure(
                duration or size.e2e_seconds,
                size.e2e_rate,
                size.seed_projects,
                size.seed_time_logs,
                size.seed_errors,
            ),
        ),
        (("pull",), lambda: bench_pull.measure(size.pull_projects)),
        (("replay",), lambda: replay(size.dead_letters)),
        (("rss",), lambda: bench_rss.measure(size.rss_events)),
        (
            ("scale",),
            lambda: bench_scale.measure(
                size.worker_events, duration or size.ingest_seconds, size.ingest_requests
            ),
        ),
    ]


def run(only: list[str], size: Size, duration: float | None, console: Console) -> list[Row]:
    rows: list[Row] = []
    for keys, measure in _groups(size, duration):
        wanted = [k for k in keys if k in only]
        if not wanted:
            continue
        console.log(f"measuring {', '.join(wanted)} ({size.name})…")
        started = time.perf_counter()
        try:
            measured = {row.key: row for row in measure()}
        except Exception as exc:  # the other rows still run; the exit status says so
            console.log(f"[red]{', '.join(wanted)} failed:[/] {type(exc).__name__}: {exc}")
            message = f"{type(exc).__name__}: {str(exc)[:500]}"
            measured = {k: Row(key=k, what=WHAT[k], error=message) for k in keys}
        elapsed = round(time.perf_counter() - started, 1)
        for key in wanted:
            measured[key].params["run_seconds"] = elapsed
            rows.append(measured[key])
    return rows


def _server_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    try:
        engine = create_engine(servers.postgres_server_url())
        with engine.connect() as connection:
            versions["postgresql"] = str(connection.scalar(text("SHOW server_version")))
        engine.dispose()
    except Exception as exc:
        versions["postgresql"] = f"unknown ({type(exc).__name__})"
    try:
        connection = pika.BlockingConnection(pika.URLParameters(broker_url()))
        properties = connection._impl.server_properties  # what the broker announced
        connection.close()
        versions["rabbitmq"] = _text(properties.get("version", "unknown"))
    except Exception as exc:
        versions["rabbitmq"] = f"unknown ({type(exc).__name__})"
    return versions


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _only(value: str) -> list[str]:
    keys = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ROWS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"rows are {', '.join(ROWS)}; not {', '.join(unknown)}")
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--only", type=_only, default=list(ROWS), help=",".join(ROWS))
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument(
        "--duration", type=float, help="seconds of each wrk run (ingest, e2e, scale)"
    )
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    size = SIZES[args.size]
    console = Console(stderr=True)
    started = time.perf_counter()
    try:
        rows = run(args.only, size, args.duration, console)
        versions = _server_versions()
    finally:
        servers.stop_all()
    elapsed = time.perf_counter() - started
    print_rows(rows, f"billsync benchmarks ({size.name} size, {elapsed:.0f} s)")
    if args.json:
        command = " ".join(["python -m tests.benchmarks", *sys.argv[1:]])
        write_json(args.json, rows, size, command, versions, elapsed)
    if any(row.error for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
