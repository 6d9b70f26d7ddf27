"""``billsync integration …``: the lifecycle of integrations, for operators."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from sqlalchemy.orm import Session

from worker.cli import cli, operator_errors, ready_sessions, settings_of
from worker.cli.logs import configure_logging
from worker.cli.progress import sync_progress
from worker.cli.runtime import (
    build_runner,
)
from worker.db import Integration, SyncRun
from worker.integrations import (
    RunOutcome,
    claim,
    delete_integration,
    disable,
    enable,
    history,
    request_sync,
    run_view,
    status,
)


@cli.group()
def integration() -> None:
    """Operate integrations: instant sync, disable, enable, delete, status, history.

    The same operations as /api/v1/integrations/<id>/…, for operators with
    database access.
    """


@integration.command("sync")
@click.argument("integration_id")
@click.option(
    "--background",
    is_flag=True,
    help="Only request the run; a worker performs it (default: run it here, with progress).",
)
@click.pass_context
def integration_sync(ctx: click.Context, integration_id: str, background: bool) -> None:
    """Instant sync of INTEGRATION_ID: pull every module from its watermark.

    Run here, it shows progress per module and exits non-zero unless the run
    succeeds. A worker must be running to apply the pulled events.
    """
    settings = settings_of(ctx)
    sessions = ready_sessions(settings)
    with sessions.begin() as session, operator_errors():
        run = request_sync(session, _integration(session, integration_id))
        run_id, outcome = run.id, run.outcome
        if not background and outcome == RunOutcome.PENDING:
            claim(session, run_id)  # in the same transaction: no worker takes it meanwhile
    if background or outcome != RunOutcome.PENDING:
        click.echo(json.dumps({"run_id": run_id, "outcome": outcome}))
        return
    configure_logging(settings.log_level)
    with sync_progress() as show:
        final = build_runner(settings, sessions, on_progress=show).execute(run_id)
    with sessions() as session:
        view = run_view(session.get_one(SyncRun, run_id)).model_dump(mode="json")
    click.echo(json.dumps(view, indent=2))
    if final != RunOutcome.SUCCEEDED:
        sys.exit(1)


@integration.command("disable")
@click.argument("integration_id")
@click.pass_context
def integration_disable(ctx: click.Context, integration_id: str) -> None:
    """Pause INTEGRATION_ID: events are kept but not applied until it is enabled."""
    _lifecycle(ctx, integration_id, lambda s, i: disable(s, i))


@integration.command("enable")
@click.argument("integration_id")
@click.option("--portal-id", help="Refuse unless this is the portal it is connected to.")
@click.pass_context
def integration_enable(ctx: click.Context, integration_id: str, portal_id: str | None) -> None:
    """Re-enable INTEGRATION_ID; a worker resumes every module from its last sync time."""
    _lifecycle(ctx, integration_id, lambda s, i: enable(s, i, portal_id))


@integration.command("delete")
@click.argument("integration_id")
@click.confirmation_option(prompt="Delete the integration? Synced projects become standalone.")
@click.pass_context
def integration_delete(ctx: click.Context, integration_id: str) -> None:
    """Disconnect INTEGRATION_ID; its synced projects stay as standalone projects."""
    _lifecycle(ctx, integration_id, lambda s, i: delete_integration(s, i))


@integration.command("status")
@click.argument("integration_id")
@click.pass_context
def integration_status(ctx: click.Context, integration_id: str) -> None:
    """State, per-module last sync time, counts synced and open errors (JSON)."""
    sessions = ready_sessions(settings_of(ctx))
    with sessions() as session, operator_errors():
        report = status(session, _integration(session, integration_id))
        click.echo(json.dumps(report.view().model_dump(mode="json"), indent=2))


@integration.command("history")
@click.argument("integration_id")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
def integration_history(ctx: click.Context, integration_id: str, limit: int) -> None:
    """Every sync run of INTEGRATION_ID, newest first (JSON lines)."""
    sessions = ready_sessions(settings_of(ctx))
    with sessions() as session, operator_errors():
        for run in history(session, _integration(session, integration_id), limit):
            click.echo(json.dumps(run_view(run).model_dump(mode="json")))


def _integration(session: Session, integration_id: str) -> Integration:
    found = session.get(Integration, integration_id)
    if found is None:
        raise click.ClickException(f"no integration {integration_id}")
    return found


def _lifecycle(
    ctx: click.Context, integration_id: str, change: Callable[[Session, Integration], object]
) -> None:
    sessions = ready_sessions(settings_of(ctx))
    with sessions.begin() as session, operator_errors():
        found = _integration(session, integration_id)
        change(session, found)
        click.echo(json.dumps({"id": found.id, "status": found.status}))


@integration.command("webhook-setup")
@click.argument("integration_id")
@click.option(
    "--public-url",
    help="The URL Zoho reaches the gateway at (default: BILLSYNC_PUBLIC_URL, else host:port).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead.")
@click.pass_context
def integration_webhook_setup(
    ctx: click.Context, integration_id: str, public_url: str | None, as_json: bool
) -> None:
    """What to paste into Zoho Projects: per module the URL, method and body templates.

    The webhook token is not shown (only its hash is kept): use the one shown at connect.
    """
    from worker.integrations import webhook_setup

    settings = settings_of(ctx)
    base_url = public_url or settings.public_url or f"http://{settings.host}:{settings.port}"
    sessions = ready_sessions(settings)
    with sessions() as session:
        setup = webhook_setup(_integration(session, integration_id), base_url)
    if not (public_url or settings.public_url):
        click.echo(
            f"note: no BILLSYNC_PUBLIC_URL or --public-url; using {base_url}, which Zoho "
            "can reach only if it is public",
            err=True,
        )
    if as_json:
        click.echo(setup.model_dump_json(indent=2))
        return
    click.echo(f"Integration {setup.integration_id} ({setup.verification} verification)")
    if setup.warning:
        click.echo(f"WARNING: {setup.warning}")
    for module in setup.modules:
        click.echo(f"\n== {module.module} (Zoho: {module.zoho_module}) ==")
        click.echo(f"Where:  {module.where}")
        click.echo(f"Method: {module.method}")
        click.echo(f"URL:    {module.url}")
        for name, value in module.custom_parameters.items():
            click.echo(f"Custom parameter: {name} = {value}")
        if module.url_with_token:
            click.echo(f"  (or, if Preview URL shows no ?token=, URL: {module.url_with_token})")
        for template in module.templates:
            click.echo(f"\n-- {template.action}: {template.trigger}")
            click.echo(template.body_template)
            click.echo(f"required: {', '.join(template.required_fields)}")
        for caveat in module.caveats:
            click.echo(f"! {caveat}")
    click.echo("\nNotes:")
    for note in setup.notes:
        click.echo(f"- {note}")
