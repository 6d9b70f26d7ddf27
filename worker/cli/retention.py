"""``billsync db prune``: remove what is older than its retention (``worker.db.retention``)."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from worker.cli import settings_of
from worker.cli.processes import checked_engine, db, refused_at_start
from worker.cli.progress import prune_progress
from worker.db import PRUNE_CHUNK_ROWS, PartitionBusy, PruneResult, prune


@db.command("prune")
@click.option("--dry-run", is_flag=True, help="Only count what would be removed.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=PRUNE_CHUNK_ROWS,
    show_default=True,
    help="Rows deleted per transaction.",
)
@click.pass_context
def db_prune(ctx: click.Context, dry_run: bool, chunk_size: int) -> None:
    """Remove what is older than its BILLSYNC_RETAIN_* retention, in small transactions.

    The event-id ledger (whole weeks on PostgreSQL, which also gets its partitions made
    ahead), resolved errors, the edit audit of dead letters that are gone, and finished
    sync runs. Open errors, waiting dead letters and parked events, and the ledger ids
    they hold, are kept. Safe beside running workers, and for a CronJob: a second prune
    of the same PostgreSQL database at once does nothing. Progress on stderr, then what
    each table lost as JSON.
    """
    settings = settings_of(ctx)
    with refused_at_start():
        engine = checked_engine(settings)
    try:
        with prune_progress() as show:
            result = prune(
                engine, settings, dry_run=dry_run, chunk_rows=chunk_size, on_progress=show
            )
    except PartitionBusy as exc:
        raise click.ClickException(str(exc)) from exc
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise click.ClickException(
            f"the prune failed: {cause}. What it removed before stays removed; run it again."
        ) from exc
    finally:
        engine.dispose()
    if result.skipped:
        click.echo("another billsync db prune is running on this database: nothing done", err=True)
    click.echo(json.dumps(summary(result)))


def summary(result: PruneResult) -> dict[str, Any]:
    """What the prune did, as the command prints it."""
    tables: dict[str, Any] = {}
    for pruned in result.tables:
        tables[pruned.table] = {"removed": pruned.removed}
        if pruned.table == "processed_events":
            tables[pruned.table] |= {
                "partitions_dropped": pruned.dropped,
                "held_ids_renewed": pruned.renewed,
            }
    return {
        "dry_run": result.dry_run,
        "skipped": result.skipped,
        "now": result.now.isoformat(),
        "tables": tables,
        "partitions_created": result.created,
    }
