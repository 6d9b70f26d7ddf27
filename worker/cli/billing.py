"""``billsync invoice …`` and ``billsync billing …``: bill synced time."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal

import click

from worker.billing import (
    GROUPINGS,
    InvoiceRequest,
    Scope,
    create_invoice,
    invoice_view,
    run_due,
    void_invoice,
)
from worker.cli import PositiveDecimal, cli, operator_errors, ready_sessions, settings_of


@cli.group()
def invoice() -> None:
    """Bill synced time: create an invoice for a project, void one."""


@invoice.command("create")
@click.argument("project_id", type=int)
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.option("--milestone", "milestones", type=int, multiple=True, help="Milestone id.")
@click.option("--tasklist", "tasklists", type=int, multiple=True, help="Task list id.")
@click.option("--task", "tasks", type=int, multiple=True, help="Task id (repeatable).")
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="First log date.")
@click.option("--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Last log date.")
@click.option(
    "--group-by",
    type=click.Choice(GROUPINGS),
    default="single",
    show_default=True,
)
@click.option(
    "--amount",
    type=PositiveDecimal("an amount", "1250.50"),
    help="Fixed-cost projects: the part to bill.",
)
@click.pass_context
def invoice_create(
    ctx: click.Context,
    project_id: int,
    organization_id: str,
    milestones: tuple[int, ...],
    tasklists: tuple[int, ...],
    tasks: tuple[int, ...],
    date_from: datetime | None,
    date_to: datetime | None,
    group_by: str,
    amount: Decimal | None,
) -> None:
    """Invoice PROJECT_ID's unbilled time (the whole project unless scoped); prints it."""
    request = InvoiceRequest(
        project_id=project_id,
        scope=Scope(
            milestone_ids=milestones,
            tasklist_ids=tasklists,
            task_ids=tasks,
            date_from=date_from.date() if date_from else None,
            date_to=date_to.date() if date_to else None,
        ),
        grouping=group_by,
        fixed_amount=amount,
    )
    sessions = ready_sessions(settings_of(ctx))
    with sessions.begin() as session, operator_errors():
        invoice = create_invoice(session, organization_id, request)
        click.echo(json.dumps(invoice_view(invoice).model_dump(mode="json")))


@invoice.command("void")
@click.argument("invoice_id", type=int)
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.pass_context
def invoice_void(ctx: click.Context, invoice_id: int, organization_id: str) -> None:
    """Void INVOICE_ID: exactly the time it consumed becomes unbilled again."""
    sessions = ready_sessions(settings_of(ctx))
    with sessions.begin() as session, operator_errors():
        released = void_invoice(session, organization_id, invoice_id)
        click.echo(json.dumps({"invoice_id": invoice_id, "released_timesheet_ids": released}))


@cli.group()
def billing() -> None:
    """Scheduled billing."""


@billing.command("run-due")
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    help="Bill the periods ended by this date [today, UTC].",
)
@click.pass_context
def billing_run_due(ctx: click.Context, today: datetime | None) -> None:
    """Create the invoices of every recurring period that has ended (run it from cron).

    Idempotent: a period is invoiced once however often this runs. Prints one JSON
    line per period handled.
    """
    sessions = ready_sessions(settings_of(ctx))
    day = today.date() if today else datetime.now(UTC).date()
    for result in run_due(sessions, day):
        click.echo(json.dumps(asdict(result), default=str))
