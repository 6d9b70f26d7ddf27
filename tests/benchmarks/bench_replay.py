"""Dead-letter replay throughput, against its baseline measured in the same run.

    python -m tests.benchmarks.bench_replay [--dead-letters 20000] [--traceback-chars 8000]
                                            [--no-cli] [--json PATH]

Seeds N dead letters of time-log events into a temporary database, as the archiver
stores them (``archive``'s own row shape, copied in bulk with COPY), then prints
dead letters/s for:
  bulk publish  the publisher's pipelined, confirmed bulk publish of the same queue
                messages, 1,000 per call, no database (the ceiling; the baseline)
  cli           ``billsync dlq replay --all`` as a subprocess, process start included
  function      ``replay()`` in this process (the same work without the start-up)
and each replay's ratio to the baseline; the target is ≥ 2,000/s for the CLI.
Every measurement starts from an empty queue; a replay must leave no dead letter
and exactly N messages queued. ``--json PATH`` also writes the figures there.
Needs PostgreSQL and RabbitMQ, found as the test suite finds them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any, cast

from sqlalchemy import Engine, Text, create_engine, func, select
from sqlalchemy.orm import Session

from schemas import QueueMessage
from tests import servers
from tests.benchmarks.common import bench_integration, temporary_database
from tests.events import message, timesheet
from tests.support import BrokerProbe, wait_until
from worker.db import DeadLetter, make_sessionmaker, migrate
from worker.messaging.dead_letters import DeadLetterFilter, archive, replay
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings

BIN = Path(sys.executable).parent
ROOT = Path(__file__).parents[2]
PUBLISH_CHUNK = 1_000
# The columns an archived row fills (``id`` is the table's sequence).
COLUMNS = (
    "integration_id",
    "event_id",
    "module",
    "action",
    "routing_key",
    "error_class",
    "error_message",
    "traceback",
    "attempts",
    "first_failure_at",
    "last_failure_at",
    "dead_at",
    "body",
    "headers",
)


def _messages(integration_id: str, count: int) -> list[QueueMessage]:
    return [
        message(
            timesheet(f"L{n}", f"P{n % 50}", task_id=f"T{n % 500}", minutes=30 + n % 90),
            integration_id,
            f"dead-{n}",
        )
        for n in range(count)
    ]


def _traceback(chars: int) -> str:
    """A traceback as long as the consumer keeps (its last 8,000 characters), made of
    billsync's own source lines so that it compresses like a real one (a repeated
    frame would shrink to nothing in the database's compression)."""
    random = Random(8000)
    sources = [p for p in sorted((ROOT / "worker").rglob("*.py")) if p.stat().st_size > 0]
    frames = []
    size = 0
    while size < chars:
        source = random.choice(sources)
        lines = [line.strip() for line in source.read_text().splitlines() if line.strip()]
        number = random.randrange(len(lines))
        frame = (
            f'  File "/srv/billsync/{source.relative_to(ROOT)}", '
            f"line {number + 1}, in {random.choice(['write', 'apply', 'run', 'flush'])}\n"
            f"    {lines[number]}\n"
        )
        frames.append(frame)
        size += len(frame)
    text = "Traceback (most recent call last):\n" + "".join(frames)
    return text[: chars - 60] + "\nsqlalchemy.exc.OperationalError: deadlock detected\n"


def _error_headers(queued: QueueMessage, traceback: str) -> dict[str, Any]:
    """The headers the worker dead-letters a message with (see worker.messaging.consumer)."""
    return {
        **queued.headers(),
        "x-billsync-error-class": "OperationalError",
        "x-billsync-error-message": "deadlock detected",
        "x-billsync-traceback": traceback,
        "x-billsync-attempts": 5,
        "x-billsync-first-failure": "2026-11-25T10:00:00+00:00",
        "x-billsync-last-failure": "2026-11-25T10:01:00+00:00",
        "x-billsync-original-routing-key": "timesheets.updated",
    }


def _copy_value(value: Any) -> str:
    """One COPY text-format field."""
    if value is None:
        return r"\N"
    text = json.dumps(value) if isinstance(value, dict) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _Unstored:
    """A stand-in session for ``archive``: it builds the row, nothing is written."""

    def add(self, row: Any) -> None:
        pass

    def flush(self) -> None:
        pass


def _seed(engine: Engine, messages: Sequence[QueueMessage], traceback: str) -> None:
    """Store ``messages`` as dead letters in exactly the shape ``archive`` gives a row
    (whatever that shape is in the code measured), bulk-copied for speed."""
    now = datetime.now(UTC)
    buffer = io.StringIO()
    for queued in messages:
        body = queued.model_dump_json()
        headers = _error_headers(queued, traceback)
        row = archive(cast(Session, _Unstored()), body, headers, "timesheets.updated")
        row.dead_at = now
        buffer.write("\t".join(_copy_value(getattr(row, c)) for c in COLUMNS) + "\n")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY dead_letters ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            copy.write(buffer.getvalue())
        raw.commit()
    finally:
        raw.close()


def _stored(engine: Engine) -> tuple[int, float]:
    """(dead letters, average bytes of body, traceback and headers per row)."""
    row_bytes = (
        func.octet_length(DeadLetter.body)
        + func.octet_length(DeadLetter.traceback)
        + func.octet_length(DeadLetter.headers.cast(Text))
    )
    with engine.connect() as connection:
        count, size = connection.execute(select(func.count(), func.avg(row_bytes))).one()
    return int(count), float(size or 0)


def _queued_after(probe: BrokerProbe, count: int) -> None:
    wait_until(lambda: probe.depth() >= count, timeout=120)
    depth = probe.depth()
    if depth != count:
        raise SystemExit(f"{depth} messages queued, {count} expected")


def _empty_queue(probe: BrokerProbe, publisher: Publisher) -> None:
    probe.reset()
    publisher.declare_topology()


def _baseline(publisher: Publisher, messages: Sequence[QueueMessage]) -> float:
    replayed = [m.model_copy(update={"source": "replay"}) for m in messages]
    started = time.perf_counter()
    for start in range(0, len(replayed), PUBLISH_CHUNK):
        publisher.publish(replayed[start : start + PUBLISH_CHUNK])
    return len(replayed) / (time.perf_counter() - started)


def _cli(settings: Settings, count: int) -> float:
    env = {
        **os.environ,
        "BILLSYNC_DATABASE_URL": settings.database_url,
        "BILLSYNC_BROKER_URL": settings.broker_url,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "billsync"), "dlq", "replay", "--all"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"billsync dlq replay failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["replayed"] != count:
        raise SystemExit(f"billsync dlq replay replayed {result}, {count} expected")
    return count / elapsed


def _function(settings: Settings, engine: Engine, publisher: Publisher, count: int) -> float:
    sessions = make_sessionmaker(engine)
    started = time.perf_counter()
    result = replay(sessions, publisher, DeadLetterFilter())
    elapsed = time.perf_counter() - started
    if result.replayed != count:
        raise SystemExit(f"replay() replayed {result}, {count} expected")
    return count / elapsed


def _measure(args: argparse.Namespace, database_url: str) -> dict[str, float]:
    engine = create_engine(database_url)
    migrate.upgrade_schema(engine)
    settings = Settings(database_url=database_url, broker_url=servers.rabbitmq_url())
    probe = BrokerProbe(settings.broker_url)
    publisher = Publisher(settings, build_topology(settings))
    n = args.dead_letters
    traceback = _traceback(args.traceback_chars)
    messages = _messages(bench_integration(engine, ("timesheets",)), n)
    figures: dict[str, float] = {"dead_letters": n}
    try:
        _empty_queue(probe, publisher)
        figures["bulk_publish_per_s"] = _baseline(publisher, messages)
        _queued_after(probe, n)

        runs = ["cli", "function"] if args.cli else ["function"]
        for run in runs:
            _seed(engine, messages, traceback)
            count, row_bytes = _stored(engine)
            figures["stored_row_bytes"] = round(row_bytes)
            _empty_queue(probe, publisher)
            if run == "cli":
                rate = _cli(settings, count)
            else:
                rate = _function(settings, engine, publisher, count)
            _queued_after(probe, n)
            if _stored(engine)[0] != 0:
                raise SystemExit(f"{run}: dead letters left after the replay")
            figures[f"{run}_per_s"] = rate
            figures[f"{run}_ratio"] = rate / figures["bulk_publish_per_s"]
    finally:
        publisher.close()
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dead-letters", type=int, default=20_000)
    parser.add_argument(
        "--traceback-chars", type=int, default=8_000, help="Per dead letter (the consumer's cap)."
    )
    parser.add_argument("--no-cli", dest="cli", action="store_false", help="Measure replay() only.")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    try:
        with temporary_database() as url:
            figures = _measure(args, url)
    finally:
        servers.stop_all()
    print(f"dead letters   {args.dead_letters:>9,}  ({figures['stored_row_bytes']:,.0f} B/row)")
    print(f"bulk publish   {figures['bulk_publish_per_s']:>9,.0f} /s  (baseline)")
    for run in ("cli", "function"):
        if f"{run}_per_s" in figures:
            print(
                f"{'replay ' + run:<14} {figures[f'{run}_per_s']:>9,.0f} /s  "
                f"= {figures[f'{run}_ratio']:.2f} × baseline"
            )
    if "cli_per_s" in figures:
        print(f"target: cli ≥ 2,000/s: {'met' if figures['cli_per_s'] >= 2000 else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
