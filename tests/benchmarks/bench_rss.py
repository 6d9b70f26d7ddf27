"""Worker memory: the resident set of `billsync worker` while it drains many events.

    python -m tests.benchmarks.bench_rss [--events 100000]

The same drain as ``bench_worker`` (realistic events queued first, then one
`billsync worker` process), with the process's VmRSS read every 20 ms beside the
count of events settled. Figures: RSS when 20 % and 50 % of the events are settled,
at the end, and the peak (MB). Targets: flat (the end ≤ 1.10 × the 20 % mark: what
grows after warming up would grow without bound) and a peak ≤ 150 MB.
Needs PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

import argparse

from sqlalchemy import create_engine

from tests.benchmarks.common import (
    drain,
    new_tenant,
    reset_queues,
    settings_for,
    standalone,
    temporary_database,
)
from tests.benchmarks.report import FULL, Figure, Row, Target
from tests.benchmarks.workload import queue_messages, realistic
from worker.db import migrate

PEAK_MB, FLAT = 150, 1.10


def _at(samples: list[tuple[int, float]], settled: int) -> float:
    """RSS at the first sample with at least ``settled`` events settled."""
    return next(mb for done, mb in samples if done >= settled)


def measure(events: int) -> list[Row]:
    with temporary_database() as database_url:
        settings = settings_for(database_url)
        engine = create_engine(database_url)
        try:
            migrate.upgrade_schema(engine)
            tenant = new_tenant(engine, settings)
            messages = queue_messages(realistic(events, prefix="m-"), tenant.integration_id)
            drained = drain(engine, database_url, settings, tenant, messages, sample_rss=True)
        finally:
            engine.dispose()
        reset_queues(settings)
    samples = drained.rss
    warm, middle = _at(samples, events // 5), _at(samples, events // 2)
    end, peak = samples[-1][1], max(mb for _, mb in samples)
    return [
        Row(
            key="rss",
            what=f"`billsync worker`'s RSS while it drains {events:,} realistic events",
            figures=[
                Figure("rss_20pct_mb", "at 20 %", warm, "MB"),
                Figure("rss_50pct_mb", "at 50 %", middle, "MB"),
                Figure("rss_end_mb", "at the end", end, "MB"),
                Figure("rss_peak_mb", "peak", peak, "MB"),
                Figure("events_per_s", "meanwhile", drained.rate, "events/s"),
            ],
            ratios={"end / at 20 %": end / warm},
            targets=[
                Target("end / at 20 %", end / warm, "<=", FLAT, "×"),
                Target("peak", peak, "<=", PEAK_MB, "MB"),
            ],
            params={"events": events, "samples": len(samples)},
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=FULL.rss_events)
    args = parser.parse_args()
    standalone("worker memory", lambda: measure(args.events))


if __name__ == "__main__":
    main()
