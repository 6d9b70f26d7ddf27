"""A small chaos run in the suite: production processes, kills and cuts, zero faults.

The 100,000-event run is `python -m tests.chaos --events 100000` (README, Guarantees).
"""

from __future__ import annotations

from tests.benchmarks.common import temporary_database
from tests.chaos.run import ChaosConfig, run_chaos

SMALL = ChaosConfig(
    events=1_500,
    workers=3,
    kills=2,
    broker_cut=("reset", 2.0),
    database_cut=("partition", 3.0),
    senders=6,
    drain_seconds=240,
)


def test_a_chaos_run_loses_nothing_leaves_nothing_stale_and_dead_letters_nothing(
    broker_url: str,
) -> None:
    with temporary_database() as database_url:
        report, faults = run_chaos(SMALL, database_url, broker_url)

    assert report.accepted == report.sent and report.gave_up == 0
    assert report.correct, "\n".join([*report.lines(), f"faults: {', '.join(faults)}"])
