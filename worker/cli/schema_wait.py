"""``billsync db wait``: block until the database answers at this billsync's schema.

What a process started beside a migration runs first: a Kubernetes init container
before ``billsync gateway`` or ``billsync worker`` (which refuse a schema that is not
current), a compose service's entry point. Waiting ends at once, with exit 1, when
the database was migrated by a newer billsync: no wait mends that.
"""

from __future__ import annotations

import time

import click
from sqlalchemy.exc import OperationalError

from worker.cli import settings_of
from worker.cli.processes import db
from worker.db import SchemaAhead, SchemaNotCurrent, make_engine, require_current


@db.command("wait")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Give up (exit 1) after this many seconds; 0 checks once.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between checks.",
)
@click.pass_context
def db_wait(ctx: click.Context, timeout: float, interval: float) -> None:
    """Wait until the database is reachable and migrated to this billsync's schema.

    Exits 0 as soon as it is; 1 after --timeout seconds, or at once when a newer
    billsync migrated it. Prints why it waits each time that changes.
    """
    engine = make_engine(settings_of(ctx))
    deadline = time.monotonic() + timeout
    said = ""
    try:
        while True:
            try:
                require_current(engine)
            except SchemaAhead as exc:
                raise click.ClickException(str(exc)) from exc
            except (SchemaNotCurrent, OperationalError) as exc:
                why = str(exc.orig if isinstance(exc, OperationalError) else exc).strip()
                if time.monotonic() >= deadline:
                    raise click.ClickException(f"gave up after {timeout:g} s: {why}") from exc
                if why != said:
                    click.echo(f"waiting for the database: {why}", err=True)
                    said = why
                time.sleep(interval)
                continue
            click.echo("database ready: schema current", err=True)
            return
    finally:
        engine.dispose()
