"""``python -m tests.chaos``: one chaos run, its figures, exit 1 unless all are right."""

from __future__ import annotations

import sys
import time

import click

from tests import servers
from tests.benchmarks.common import temporary_database
from tests.chaos.run import ChaosConfig, run_chaos


def _cut(value: str) -> tuple[str, float] | None:
    if value == "none":
        return None
    mode, _, seconds = value.partition(":")
    if mode not in ("reset", "partition") or not seconds.replace(".", "", 1).isdigit():
        raise click.BadParameter("MODE:SECONDS with MODE reset or partition, or none")
    return mode, float(seconds)


@click.command()
@click.option("--events", default=2_000, show_default=True, help="Ledger size (each sent twice).")
@click.option("--workers", default=3, show_default=True, help="Workers for a third of the run.")
@click.option("--kills", default=3, show_default=True, help="Workers SIGKILLed during the run.")
@click.option("--broker-cut", default="reset:5", show_default=True, help="MODE:SECONDS or none.")
@click.option(
    "--database-cut", default="partition:5", show_default=True, help="MODE:SECONDS or none."
)
@click.option("--senders", default=8, show_default=True, help="Concurrent webhook senders.")
@click.option("--seed", default=0, show_default=True)
def main(
    events: int,
    workers: int,
    kills: int,
    broker_cut: str,
    database_cut: str,
    senders: int,
    seed: int,
) -> None:
    """Send a generated history through a faulty deployment and compare with its oracle."""
    config = ChaosConfig(
        events=events,
        workers=workers,
        kills=kills,
        broker_cut=_cut(broker_cut),
        database_cut=_cut(database_cut),
        senders=senders,
        seed=seed,
    )
    started = time.monotonic()
    try:
        with temporary_database() as database_url:
            report, actions = run_chaos(
                config, database_url, servers.rabbitmq_url(), progress=click.echo
            )
    finally:
        servers.stop_all()
    click.echo(f"chaos run: {config}")
    click.echo(f"faults: {', '.join(actions)}")
    for line in report.lines():
        click.echo(f"  {line}")
    click.echo(f"  took {time.monotonic() - started:,.0f} s")
    click.echo("result: " + ("correct" if report.correct else "WRONG"))
    sys.exit(0 if report.correct else 1)


if __name__ == "__main__":
    main()
