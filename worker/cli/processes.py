"""Commands that run billsync, set up its database and tenants, and send webhooks."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from schemas.headers import WEBHOOK_TOKEN_HEADER
from worker.accounts import create_organization
from worker.cli import cli, ready_sessions, redacted, settings_of, stop_on_signals
from worker.cli.logs import configure_logging
from worker.cli.preflight import ensure_port_free, exclusive_data_dir
from worker.cli.runtime import (
    ConsumerThread,
    build_archiver,
    build_consumer,
    build_scheduler,
)
from worker.db import (
    SchemaNotCurrent,
    make_engine,
    make_sessionmaker,
    require_current,
    upgrade_schema,
)
from worker.errors import ConfigurationError
from worker.messaging import recover_in_flight, serve_worker_metrics
from worker.metrics import mark_worker_dead, shared_across_processes
from worker.settings import Settings

log = logging.getLogger(__name__)

# -- database -----------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply Alembic migrations up to REVISION (safe to run repeatedly)."""
    engine = make_engine(settings_of(ctx))
    with refused_at_start():
        upgrade_schema(engine, revision)
    click.echo(f"database at {revision} ({engine.url.render_as_string(hide_password=True)})")


# -- organizations (tokens: worker/cli/tokens.py) ---------------------------


@cli.group()
def org() -> None:
    """Organizations (tenants)."""


def _not_blank(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("an organization needs a name that is not blank")
    return value


@org.command("create")
@click.argument("name", callback=_not_blank)
@click.pass_context
def org_create(ctx: click.Context, name: str) -> None:
    """Create organization NAME; prints its id and an admin token (shown once)."""
    sessions = ready_sessions(settings_of(ctx))
    with sessions.begin() as session:
        organization, token = create_organization(session, name)
        organization_id = organization.id
    click.echo(json.dumps({"organization_id": organization_id, "admin_token": token}))


# -- processes ----------------------------------------------------------------

PORT_SETTING = "--port or BILLSYNC_PORT"


@contextmanager
def refused_at_start() -> Iterator[None]:
    """What stops a process from starting, as a message and exit 1, not a traceback."""
    try:
        yield
    except click.ClickException:
        raise  # InvalidConfiguration is a ConfigurationError too, with its own exit code
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc


def checked_engine(settings: Settings) -> Engine:
    """An engine on a database migrated to this code's schema; production processes do
    not migrate (several starting at once would race, and the operator decides when)."""
    engine = make_engine(settings)
    try:
        require_current(engine)
    except OperationalError as exc:
        engine.dispose()
        raise click.ClickException(
            f"cannot reach the database ({redacted(settings.database_url)}): {exc.orig}"
        ) from exc
    except SchemaNotCurrent:
        engine.dispose()
        raise
    return engine


@cli.command()
@click.option("--host", default=None, help="Listen address [BILLSYNC_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Listen port [BILLSYNC_PORT, 8080].")
@click.pass_context
def run(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Gateway and worker in one process (the embedded default needs no servers).

    Migrates the database first. Stop with Ctrl-C: in-flight messages are
    returned to the queue. Refuses a busy port, and a data directory another
    `billsync run` holds.
    """
    settings = settings_of(ctx)
    configure_logging(settings.log_level)
    host, port = host or settings.host, port or settings.port
    with ExitStack() as held:
        with refused_at_start():
            ensure_port_free(host, port, PORT_SETTING)
            if settings.uses_data_dir:
                # Before migrating and recovering: a second run would take the first
                # one's in-flight messages back.
                held.enter_context(exclusive_data_dir(settings.data_dir))
        _run_embedded(settings, host, port)


def _run_embedded(settings: Settings, host: str, port: int) -> None:
    from werkzeug.serving import make_server

    from webhook_gateway import create_app

    sessions = ready_sessions(settings)
    if settings.is_embedded_broker:
        recover_in_flight(settings.broker_url)
    app = create_app(settings, sessions=sessions)
    worker = ConsumerThread(build_consumer(settings, sessions))
    worker.start()
    archiver = ConsumerThread(build_archiver(settings, sessions))
    archiver.start()
    scheduler = build_scheduler(settings, sessions)
    scheduler.start()
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:  # taken between the check and now
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    stop_on_signals(server.shutdown)
    click.echo(
        f"billsync listening on http://{server.host}:{server.port} "
        f"(database {redacted(settings.database_url)}, broker {redacted(settings.broker_url)})",
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
# Defaults measured on 2 cores (README, Performance): a request mostly waits for the
# broker's confirm, so one process per core with 16 threads each served the most
# webhooks; 8 threads left requests queued behind busy threads, sync workers (no
# keep-alive, one request per process) a third as many.
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn processes.")
@click.option("--threads", type=int, default=16, show_default=True, help="Threads per process.")
@click.option(
    "--worker-class",
    type=click.Choice(["gthread", "sync"]),
    default="gthread",
    show_default=True,
    help="gunicorn worker class; sync serves one request per process at a time "
    "(--threads does not apply).",
)
@click.pass_context
def gateway(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int,
    threads: int,
    worker_class: str,
) -> None:
    """The HTTP gateway alone, under gunicorn (production; pair with `billsync worker`)."""
    from gunicorn.app.base import BaseApplication

    from webhook_gateway import create_app

    settings = settings_of(ctx)
    configure_logging(settings.log_level)
    host, port = host or settings.host, port or settings.port
    with refused_at_start():
        ensure_port_free(host, port, PORT_SETTING)
        checked_engine(settings).dispose()  # each gunicorn worker makes its own

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            # gunicorn would silently turn a sync worker with threads into gthread.
            self.cfg.set("threads", 1 if worker_class == "sync" else threads)
            self.cfg.set("worker_class", worker_class)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 25.1+ opens a control socket at one path per user, so every
                # gateway on the host would take it from the one before; billsync is
                # managed by signals (SIGTERM, SIGHUP), not gunicornc.
                self.cfg.set("control_socket_disable", True)
            for name, value in GUNICORN_REQUEST_LIMITS.items():
                self.cfg.set(name, value)
            # SIGTERM: each process stops accepting, finishes the requests it holds (a
            # webhook's answer waits for the broker's confirm) and exits; one still busy
            # after this long is killed. gunicorn's default, set so it is on record.
            self.cfg.set("graceful_timeout", GRACEFUL_TIMEOUT_SECONDS)
            self.cfg.set("post_worker_init", _post_worker_init)
            self.cfg.set("child_exit", mark_worker_dead)

        def load(self) -> Any:
            return create_app(settings)

    # Every gunicorn process counts into files they all share, so each scrape (whichever
    # process answers it) sums them: set up here, before gunicorn forks.
    with shared_across_processes():
        _Gunicorn().run()


# What gunicorn itself refuses before the app sees a request: a request line (method,
# URL, version) over limit_request_line is 414, more header fields than
# limit_request_fields or one over limit_request_field_size is 431, a malformed
# request 400. These are gunicorn's defaults, set explicitly so they are on record.
GUNICORN_REQUEST_LIMITS = {
    "limit_request_line": 4094,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}


GRACEFUL_TIMEOUT_SECONDS = 30


def _post_worker_init(worker: Any) -> None:
    json_protocol_errors(worker)
    announce_graceful_stop(worker)


def announce_graceful_stop(worker: Any) -> None:
    """A gunicorn process told to stop (SIGTERM) logs it, and how long it may take to
    answer the requests it holds; gunicorn itself logs nothing until it has exited."""
    handle_exit = worker.handle_exit

    def stopping(signum: int, frame: Any) -> None:
        handle_exit(signum, frame)  # gunicorn's: accept nothing more, finish, exit

        def announce() -> None:  # not in the handler: it may interrupt a log write
            log.info(
                "gateway process %d stopping on SIGTERM: finishing the requests in hand "
                "within %d s",
                worker.pid,
                worker.cfg.graceful_timeout,
            )

        threading.Thread(target=announce, daemon=True).start()

    signal.signal(signal.SIGTERM, stopping)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn set it: no EINTR in requests


def json_protocol_errors(_worker: Any) -> None:
    """gunicorn's post_worker_init hook: its own error answers (414, 431, 400 and the
    like) become the API's JSON error body instead of an HTML page.

    gunicorn has no setting for this; its workers write those answers through
    ``gunicorn.util.write_error``, so each worker process swaps that one function.
    """
    from gunicorn import util

    util.write_error = write_json_error


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """``gunicorn.util.write_error``'s signature, writing ``{"error", "message", "details"}``."""
    from gunicorn import util

    code = reason.lower().replace(" ", "_")
    body = json.dumps({"error": code, "message": mesg or reason, "details": None}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """The worker alone: applies billsync.apply and runs the pulls, until SIGTERM or Ctrl-C."""
    settings = settings_of(ctx)
    configure_logging(settings.log_level)
    with refused_at_start():
        if settings.metrics_port:
            metrics_setting = "BILLSYNC_METRICS_PORT (0 turns /metrics off)"
            ensure_port_free(settings.host, settings.metrics_port, metrics_setting)
        sessions = make_sessionmaker(checked_engine(settings))
    consumer = build_consumer(settings, sessions)
    scheduler = build_scheduler(settings, sessions)

    def _stop() -> None:
        consumer.should_stop = True
        log.info(
            "worker stopping: taking no more messages; the batch in hand and those "
            "received are applied and acknowledged first"
        )

    stop_on_signals(_stop)
    if settings.metrics_port:
        serve_worker_metrics(settings, sessions)  # the gateway's state gauges too
    archiver = ConsumerThread(build_archiver(settings, sessions))
    archiver.start()
    scheduler.start()
    try:
        consumer.run()
    finally:
        scheduler.stop()
        archiver.stop()
        consumer.close()


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
        signer = _signer(secret)
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        timestamp = datetime.now(UTC)
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(int(timestamp.timestamp()))
        headers["webhook-signature"] = signer.sign(msg_id, timestamp, body.decode())
    if webhook_token:
        headers[WEBHOOK_TOKEN_HEADER] = webhook_token
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"could not reach {url}: {exc}") from exc
    click.echo(f"{response.status_code} {response.text.strip()}")
    if not response.is_success:
        sys.exit(1)


def _signer(secret: str) -> Webhook:
    try:
        return Webhook(secret)
    except (ValueError, EmptyWebhookSecretError) as exc:  # binascii.Error is a ValueError
        raise click.BadParameter(
            "not a signing secret: give the integration's whsec_… secret as it was shown",
            param_hint="--secret",
        ) from exc
