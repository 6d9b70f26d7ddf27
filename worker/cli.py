"""The ``billsync`` command: builds Settings once and wires everything from it.

This is the composition root. It is the one place that imports both the worker
and the HTTP gateway (only inside the commands that serve HTTP), so that importing
the worker never pulls in Flask.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
import httpx
import prometheus_client
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks.webhooks import Webhook

from worker import migrate
from worker.accounts import ROLES, create_organization, create_token
from worker.billing import (
    InvoiceRequest,
    NothingToInvoice,
    RateMissing,
    Scope,
    create_invoice,
    invoice_view,
    void_invoice,
)
from worker.db import DeadLetter, Integration, SyncRun, make_engine, make_sessionmaker
from worker.dead_letters import (
    DeadLetterFilter,
    count,
    dead_letter_view,
    delete_matching,
    edit,
    find,
    replay,
)
from worker.errors import BrokerUnavailable, Conflict, NotFound
from worker.lifecycle import (
    delete_integration,
    disable,
    enable,
    history,
    request_sync,
    run_view,
    status,
)
from worker.logs import configure_logging
from worker.messaging.embedded import recover_in_flight
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.progress import replay_progress, sync_progress
from worker.recurring import run_due
from worker.runtime import (
    ConsumerThread,
    build_archiver,
    build_consumer,
    build_runner,
    build_scheduler,
)
from worker.settings import Settings
from worker.sync_runs import PENDING, SUCCEEDED, SourceMissing, claim

__all__ = ["main"]


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """billsync keeps an invoicing organization in step with a project portal.

    Configuration comes from BILLSYNC_* environment variables (see the README).
    With none set, everything runs embedded: a SQLite database and a SQLite
    message transport under BILLSYNC_DATA_DIR (default ./.billsync).
    """
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        raise click.ClickException(f"invalid configuration:\n{exc}") from exc


# -- database -----------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply Alembic migrations up to REVISION (safe to run repeatedly)."""
    engine = make_engine(_settings(ctx))
    migrate.upgrade(engine, revision)
    click.echo(f"database at {revision} ({engine.url.render_as_string(hide_password=True)})")


# -- organizations and tokens -----------------------------------------------


@cli.group()
def org() -> None:
    """Organizations (tenants)."""


@org.command("create")
@click.argument("name")
@click.pass_context
def org_create(ctx: click.Context, name: str) -> None:
    """Create organization NAME; prints its id and an admin token (shown once)."""
    sessions = _ready_sessions(_settings(ctx))
    with sessions.begin() as session:
        organization, token = create_organization(session, name)
        organization_id = organization.id
    click.echo(json.dumps({"organization_id": organization_id, "admin_token": token}))


@cli.group()
def token() -> None:
    """API bearer tokens."""


@token.command("create")
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.pass_context
def token_create(ctx: click.Context, organization_id: str, role: str) -> None:
    """Create a token for an organization; prints it once (only its hash is kept)."""
    sessions = _ready_sessions(_settings(ctx))
    try:
        with sessions.begin() as session:
            value = create_token(session, organization_id, "admin" if role == "admin" else "viewer")
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"organization_id": organization_id, "role": role, "token": value}))


# -- processes ----------------------------------------------------------------


@cli.command()
@click.option("--host", default=None, help="Listen address [BILLSYNC_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Listen port [BILLSYNC_PORT, 8080].")
@click.pass_context
def run(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Gateway and worker in one process (the embedded default needs no servers).

    Migrates the database first. Stop with Ctrl-C: in-flight messages are
    returned to the queue.
    """
    from werkzeug.serving import make_server

    from webhook_gateway import create_app

    settings = _settings(ctx)
    configure_logging(settings.log_level)
    sessions = _ready_sessions(settings)
    if settings.is_embedded_broker:
        recover_in_flight(settings.broker_url)
    app = create_app(settings, sessions=sessions)
    worker = ConsumerThread(build_consumer(settings, sessions))
    worker.start()
    archiver = ConsumerThread(build_archiver(settings, sessions))
    archiver.start()
    scheduler = build_scheduler(settings, sessions)
    scheduler.start()
    server = make_server(host or settings.host, port or settings.port, app, threaded=True)
    _stop_on_signals(server.shutdown)
    click.echo(
        f"billsync listening on http://{server.host}:{server.port} "
        f"(database {_redacted(settings.database_url)}, broker {_redacted(settings.broker_url)})",
        err=True,
    )
    try:
        server.serve_forever()
    finally:
        scheduler.stop()
        archiver.stop()
        worker.stop()


@cli.command()
@click.option("--host", default=None, help="Listen address [BILLSYNC_HOST].")
@click.option("--port", type=int, default=None, help="Listen port [BILLSYNC_PORT].")
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn processes.")
@click.option("--threads", type=int, default=8, show_default=True, help="Threads per process.")
@click.pass_context
def gateway(
    ctx: click.Context, host: str | None, port: int | None, workers: int, threads: int
) -> None:
    """The HTTP gateway alone, under gunicorn (production; pair with `billsync worker`)."""
    from gunicorn.app.base import BaseApplication

    from webhook_gateway import create_app

    settings = _settings(ctx)
    configure_logging(settings.log_level)

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host or settings.host}:{port or settings.port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")

        def load(self) -> Any:
            return create_app(settings)

    _Gunicorn().run()


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """The worker alone: applies billsync.apply and runs the pulls, until SIGTERM or Ctrl-C."""
    settings = _settings(ctx)
    configure_logging(settings.log_level)
    sessions = make_sessionmaker(make_engine(settings))
    consumer = build_consumer(settings, sessions)
    scheduler = build_scheduler(settings, sessions)

    def _stop() -> None:
        consumer.should_stop = True

    _stop_on_signals(_stop)
    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port, addr=settings.host)
    archiver = ConsumerThread(build_archiver(settings, sessions))
    archiver.start()
    scheduler.start()
    try:
        consumer.run()
    finally:
        scheduler.stop()
        archiver.stop()
        consumer.close()


# -- integrations -------------------------------------------------------------


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
    settings = _settings(ctx)
    sessions = _ready_sessions(settings)
    with sessions.begin() as session, _operator_errors():
        run = request_sync(session, _integration(session, integration_id))
        run_id, outcome = run.id, run.outcome
        if not background and outcome == PENDING:
            claim(session, run_id)  # in the same transaction: no worker takes it meanwhile
    if background or outcome != PENDING:
        click.echo(json.dumps({"run_id": run_id, "outcome": outcome}))
        return
    configure_logging(settings.log_level)
    with sync_progress() as show:
        final = build_runner(settings, sessions, on_progress=show).execute(run_id)
    with sessions() as session:
        view = run_view(session.get_one(SyncRun, run_id))
    click.echo(json.dumps(view, indent=2))
    if final != SUCCEEDED:
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
    sessions = _ready_sessions(_settings(ctx))
    with sessions() as session, _operator_errors():
        report = status(session, _integration(session, integration_id))
        click.echo(json.dumps(report.view(), indent=2))


@integration.command("history")
@click.argument("integration_id")
@click.option("--limit", type=int, default=20, show_default=True)
@click.pass_context
def integration_history(ctx: click.Context, integration_id: str, limit: int) -> None:
    """Every sync run of INTEGRATION_ID, newest first (JSON lines)."""
    sessions = _ready_sessions(_settings(ctx))
    with sessions() as session, _operator_errors():
        for run in history(session, _integration(session, integration_id), limit):
            click.echo(json.dumps(run_view(run)))


def _integration(session: Session, integration_id: str) -> Integration:
    found = session.get(Integration, integration_id)
    if found is None:
        raise click.ClickException(f"no integration {integration_id}")
    return found


def _lifecycle(
    ctx: click.Context, integration_id: str, change: Callable[[Session, Integration], object]
) -> None:
    sessions = _ready_sessions(_settings(ctx))
    with sessions.begin() as session, _operator_errors():
        found = _integration(session, integration_id)
        change(session, found)
        click.echo(json.dumps({"id": found.id, "status": found.status}))


@contextmanager
def _operator_errors() -> Iterator[None]:
    try:
        yield
    except (Conflict, SourceMissing, NotFound, NothingToInvoice, RateMissing) as exc:
        raise click.ClickException(str(exc)) from exc


# -- dead letters -------------------------------------------------------------


class _Rate(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """``50``, ``50/s`` or ``2.5/s``: messages per second."""

    name = "rate"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        text = str(value).strip().removesuffix("/s")
        try:
            rate = float(text)
        except ValueError:
            self.fail(f"{value!r} is not a rate like 50/s", param, ctx)
        if rate <= 0:
            self.fail("the rate must be above 0", param, ctx)
        return rate


RATE = _Rate()


class _Amount(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A money amount, kept exact as a Decimal."""

    name = "amount"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not an amount like 1250.50", param, ctx)
        if not amount.is_finite() or amount <= 0:
            self.fail("the amount must be above 0", param, ctx)
        return amount


AMOUNT = _Amount()


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

    return DeadLetterFilter(
        integration_id=options["integration_id"],
        module=options["module"],
        action=options["action"],
        error_class=options["error_class"],
        since=utc(options["since"]),
        until=utc(options["until"]),
        event_id=options["event_id"],
        ids=tuple(options["ids"]),
    )


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
    sessions = _ready_sessions(_settings(ctx))
    with sessions() as session:
        for row in find(session, flt, limit=limit):
            click.echo(json.dumps(dead_letter_view(row)))
        click.echo(f"{count(session, flt)} matching", err=True)


@dlq.command("show")
@click.argument("dead_letter_id", type=int)
@click.pass_context
def dlq_show(ctx: click.Context, dead_letter_id: int) -> None:
    """One dead letter whole: message, headers, error and traceback."""
    sessions = _ready_sessions(_settings(ctx))
    with sessions() as session:
        row = session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise click.ClickException(f"no dead letter {dead_letter_id}")
        click.echo(json.dumps(dead_letter_view(row, whole=True), indent=2))


@dlq.command("replay")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter.")
@click.option("--dry-run", is_flag=True, help="Only print how many would be replayed.")
@click.option(
    "--rate", type=RATE, metavar="N/s", help="At most N per second (leave room for live)."
)
@click.option("--limit", type=int, help="Replay at most this many.")
@click.pass_context
def dlq_replay(
    ctx: click.Context,
    /,
    everything: bool,
    dry_run: bool,
    rate: float | None,
    limit: int | None,
    **options: Any,
) -> None:
    """Republish matching dead letters through the normal idempotent path.

    A dead letter is deleted only after the broker confirmed its republish, so an
    interrupted replay can simply be run again.
    """
    flt = _selected(options, everything)
    settings = _settings(ctx)
    sessions = _ready_sessions(settings)
    if dry_run:
        with sessions() as session:
            click.echo(json.dumps({"matching": count(session, flt), "dry_run": True}))
        return
    publisher = Publisher(settings, build_topology(settings))
    try:
        with replay_progress() as show:
            result = replay(sessions, publisher, flt, rate=rate, limit=limit, on_progress=show)
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
    sessions = _ready_sessions(_settings(ctx))
    with sessions.begin() as session:
        if dry_run:
            click.echo(json.dumps({"matching": count(session, flt), "dry_run": True}))
            return
        click.echo(json.dumps({"deleted": delete_matching(session, flt)}))


@dlq.command("edit")
@click.argument("dead_letter_id", type=int)
@click.argument("event_file", type=click.File())
@click.option("--by", default="cli", show_default=True, help="Who edits (for the audit).")
@click.pass_context
def dlq_edit(ctx: click.Context, dead_letter_id: int, event_file: Any, by: str) -> None:
    """Replace the event of a dead letter with EVENT_FILE (JSON; - for stdin).

    The original and the edit are kept in the audit; replay it afterwards.
    """
    sessions = _ready_sessions(_settings(ctx))
    with sessions.begin() as session:
        row = session.get(DeadLetter, dead_letter_id)
        if row is None:
            raise click.ClickException(f"no dead letter {dead_letter_id}")
        try:
            edit(session, row, json.load(event_file), by)
        except (ValueError, ValidationError) as exc:
            raise click.ClickException(
                f"the edited event does not fit the contract: {exc}"
            ) from exc
        click.echo(json.dumps(dead_letter_view(row)))


def _selected(options: dict[str, Any], everything: bool) -> DeadLetterFilter:
    flt = _dead_letter_filter(options)
    if not everything and not any(v for v in options.values()):
        raise click.UsageError("give a filter option, or --all to act on every dead letter")
    return flt


# -- billing ------------------------------------------------------------------


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
    type=click.Choice(["single", "task", "staff", "task_staff", "timesheet"]),
    default="single",
    show_default=True,
)
@click.option("--amount", type=AMOUNT, help="Fixed-cost projects: the part to bill.")
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
    sessions = _ready_sessions(_settings(ctx))
    with sessions.begin() as session, _operator_errors():
        click.echo(json.dumps(invoice_view(create_invoice(session, organization_id, request))))


@invoice.command("void")
@click.argument("invoice_id", type=int)
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.pass_context
def invoice_void(ctx: click.Context, invoice_id: int, organization_id: str) -> None:
    """Void INVOICE_ID: exactly the time it consumed becomes unbilled again."""
    sessions = _ready_sessions(_settings(ctx))
    with sessions.begin() as session, _operator_errors():
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
    sessions = _ready_sessions(_settings(ctx))
    day = today.date() if today else datetime.now(UTC).date()
    for result in run_due(sessions, day):
        click.echo(json.dumps(asdict(result), default=str))


# -- webhooks -----------------------------------------------------------------


@cli.group()
def webhook() -> None:
    """Send webhooks to a gateway (for people and for tests)."""


@webhook.command("send")
@click.argument("event_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", required=True, help="The integration's webhook URL.")
@click.option("--secret", help="Signing secret (whsec_…): Standard Webhooks signature.")
@click.option("--token", "webhook_token", help="Webhook token (token-mode integrations).")
@click.option("--id", "webhook_id", help="webhook-id header [a new msg_… id].")
def webhook_send(
    event_file: Path,
    url: str,
    secret: str | None,
    webhook_token: str | None,
    webhook_id: str | None,
) -> None:
    """Sign EVENT_FILE (a JSON event or array) and POST it; prints the answer.

    Exits non-zero unless the gateway answers 2xx.
    """
    if not secret and not webhook_token:
        raise click.UsageError("give --secret (signature mode) or --token (token mode)")
    body = event_file.read_bytes()
    headers = {"Content-Type": "application/json"}
    if secret:
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        timestamp = datetime.now(UTC)
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(int(timestamp.timestamp()))
        headers["webhook-signature"] = Webhook(secret).sign(msg_id, timestamp, body.decode())
    if webhook_token:
        headers["X-Billsync-Token"] = webhook_token
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {url}: {exc}") from exc
    click.echo(f"{response.status_code} {response.text.strip()}")
    if not response.is_success:
        sys.exit(1)


# -- helpers --------------------------------------------------------------------


def _ready_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on a database migrated to head (every command may be the first run)."""
    engine = make_engine(settings)
    migrate.upgrade(engine)
    return make_sessionmaker(engine)


def _redacted(url: str) -> str:
    try:
        return make_url(url.split("+", 1)[1] if url.startswith("sqla+") else url).render_as_string(
            hide_password=True
        )
    except Exception:
        return url.split("@")[-1]


def _stop_on_signals(stop: Any) -> None:
    def handler(signum: int, _frame: Any) -> None:
        # serve_forever's shutdown blocks until the loop exits: call it off-thread.
        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main() -> None:
    cli(prog_name="billsync")


if __name__ == "__main__":
    main()
