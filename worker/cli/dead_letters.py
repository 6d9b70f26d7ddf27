"""``billsync dlq …``: find, replay, edit and delete dead letters."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click
from pydantic import ValidationError

from schemas.api import DeadLetterQuery
from worker.cli import PositiveDecimal, cli, ready_sessions, settings_of
from worker.cli.progress import replay_progress
from worker.db import DeadLetter
from worker.errors import BrokerUnavailable
from worker.messaging import (
    DeadLetterFilter,
    IntegrationUnknown,
    InvalidEdit,
    Publisher,
    build_topology,
    count,
    dead_letter_detail,
    dead_letter_view,
    delete_matching,
    edit,
    find,
    replay,
)


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The dead-letter filter, the same for list, replay and delete."""
    options = [
        click.option("--integration", "integration_id", help="Integration id."),
        click.option("--module", help="projects, tasks, timesheets, …"),
        click.option("--action", type=click.Choice(["created", "updated", "deleted"])),
        click.option("--error-class", help="e.g. IntegrityError, DeliveryLimitExceeded."),
        click.option("--since", type=click.DateTime(), help="Dead-lettered at or after (UTC)."),
        click.option("--until", type=click.DateTime(), help="Dead-lettered before (UTC)."),
        click.option("--event-id", help="One event id."),
        click.option("--id", "ids", type=int, multiple=True, help="Dead letter id (repeatable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _dead_letter_filter(options: dict[str, Any]) -> DeadLetterFilter:
    def utc(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None

    try:
        query = DeadLetterQuery(
            **{**options, "since": utc(options["since"]), "until": utc(options["until"])}
        )
    except ValidationError as exc:
        raise click.UsageError(f"invalid filter: {exc}") from exc
    return DeadLetterFilter.matching(query)


@cli.group()
def dlq() -> None:
    """Dead letters: events the worker gave up on, kept whole until replayed or deleted.

    Every command takes the same filter; replay and delete need at least one
    filter option or --all.
    """


@dlq.command("list")
@_filter_options
@click.option("--limit", type=int, default=50, show_default=True)
@click.pass_context
def dlq_list(ctx: click.Context, /, limit: int, **options: Any) -> None:
    """Matching dead letters, oldest first (JSON lines), then their total on stderr."""
    flt = _dead_letter_filter(options)
    sessions = ready_sessions(settings_of(ctx))
    with sessions() as session:
        for row in find(session, flt, limit=limit):
            click.echo(json.dumps(dead_letter_view(row).model_dump(mode="json")))
        click.echo(f"{count(session, flt)} matching", err=True)


@dlq.command("show")
@click.argument("dead_letter_id", type=int)
@click.pass_context
def dlq_show(ctx: click.Context, dead_letter_id: int) -> None:
    """One dead letter whole: message, headers, error and traceback."""
    sessions = ready_sessions(settings_of(ctx))
    with sessions() as session:
        row = session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise click.ClickException(f"no dead letter {dead_letter_id}")
        click.echo(json.dumps(dead_letter_detail(row).model_dump(mode="json"), indent=2))


@dlq.command("replay")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
@click.option("--dry-run", is_flag=True, help="Only print how many would be replayed.")
@click.option(
    "--rate",
    type=PositiveDecimal("a rate", "50/s", unit="/s"),
    metavar="N/s",
    help="At most N per second (leave room for live).",
)
@click.option("--limit", type=int, help="Replay at most this many.")
@click.pass_context
def dlq_replay(
    ctx: click.Context,
    /,
    everything: bool,
    dry_run: bool,
    rate: Decimal | None,
    limit: int | None,
    **options: Any,
) -> None:
    """Republish matching dead letters through the normal idempotent path.

    A dead letter is deleted only after the broker confirmed its republish, so an
    interrupted replay can simply be run again.
    """
    flt = _selected(options, everything)
    settings = settings_of(ctx)
    sessions = ready_sessions(settings)
    if dry_run:
        with sessions() as session:
            click.echo(json.dumps({"matching": count(session, flt), "dry_run": True}))
        return
    publisher = Publisher(settings, build_topology(settings))
    try:
        with replay_progress() as show:
            result = replay(
                sessions,
                publisher,
                flt,
                rate=float(rate) if rate else None,
                limit=limit,
                on_progress=show,
            )
    except BrokerUnavailable as exc:
        raise click.ClickException(f"{exc}; what was confirmed is replayed, run again") from exc
    finally:
        publisher.close()
    click.echo(json.dumps(vars(result)))


@dlq.command("delete")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Delete every dead letter.")
@click.option("--dry-run", is_flag=True, help="Only print how many would be deleted.")
@click.pass_context
def dlq_delete(ctx: click.Context, /, everything: bool, dry_run: bool, **options: Any) -> None:
    """Delete matching dead letters for good (their edit audit is kept)."""
    flt = _selected(options, everything)
    sessions = ready_sessions(settings_of(ctx))
    with sessions.begin() as session:
        if dry_run:
            click.echo(json.dumps({"matching": count(session, flt), "dry_run": True}))
            return
        click.echo(json.dumps({"deleted": delete_matching(session, flt)}))


@dlq.command("edit")
@click.argument("dead_letter_id", type=int)
@click.argument("event_file", type=click.File())
@click.option("--by", default="cli", show_default=True, help="Who edits (for the audit).")
@click.option(
    "--event-id",
    help="Replay under this event id [the letter's; unreadable: the event's own, else new].",
)
@click.option(
    "--integration",
    "integration_id",
    help="Unreadable letters naming no integration: the one the event belongs to.",
)
@click.pass_context
def dlq_edit(
    ctx: click.Context,
    dead_letter_id: int,
    event_file: Any,
    by: str,
    event_id: str | None,
    integration_id: str | None,
) -> None:
    """Replace the event of a dead letter with EVENT_FILE (JSON; - for stdin).

    Only the edit is checked against the contract. A letter whose body was never a
    queue message is repaired: the edit becomes its message, for its integration
    (or --integration), under --event-id, the event's own event_id, or a new id.
    The original and the edit are kept in the audit; replay it afterwards.
    """
    try:
        event = json.load(event_file)
    except ValueError as exc:
        raise click.ClickException(f"{event_file.name} is not JSON: {exc}") from exc
    sessions = ready_sessions(settings_of(ctx))
    with sessions.begin() as session:
        row = session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise click.ClickException(f"no dead letter {dead_letter_id}")
        try:
            edit(session, row, event, by, event_id=event_id, integration_id=integration_id)
        except (InvalidEdit, IntegrationUnknown) as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(json.dumps(dead_letter_view(row).model_dump(mode="json")))


def _selected(options: dict[str, Any], everything: bool) -> DeadLetterFilter:
    flt = _dead_letter_filter(options)
    if not everything and not any(v for v in options.values()):
        raise click.UsageError("give a filter option, or --all to act on every dead letter")
    return flt
