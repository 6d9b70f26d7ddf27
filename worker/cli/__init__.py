"""The ``billsync`` command: builds Settings once and wires everything from it.

This is the composition root. It is the one place that imports both the worker
and the HTTP gateway (only inside the commands that serve HTTP), so that importing
the worker never pulls in Flask.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

import click
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from worker.db import SchemaUnversioned, make_engine, make_sessionmaker, upgrade_schema
from worker.errors import ConfigurationError, Conflict, NotFound
from worker.settings import ENV_PREFIX, Settings, unknown_variables

__all__ = ["PositiveDecimal", "cli", "main"]


class PositiveDecimal(click.ParamType):  # type: ignore[type-arg]  # generic in newer click
    """A number above 0, kept exact (money, rates); ``unit`` may follow it (``50/s``)."""

    name = "number"

    def __init__(self, description: str, example: str, unit: str = "") -> None:
        self.description, self.example, self.unit = description, example, unit

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        try:
            number = Decimal(str(value).strip().removesuffix(self.unit))
        except InvalidOperation:
            self.fail(f"{value!r} is not {self.description} like {self.example}", param, ctx)
        if not number.is_finite() or number <= 0:
            self.fail(f"the {self.description.split()[-1]} must be above 0", param, ctx)
        return number


def settings_of(ctx: click.Context) -> Settings:
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
    for warning in unknown_variables(os.environ):
        click.echo(f"warning: {warning}", err=True)
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        raise InvalidConfiguration(exc) from exc


class InvalidConfiguration(click.ClickException, ConfigurationError):
    """Settings that do not validate: one line per variable, exit 2 like a usage error."""

    exit_code = 2

    def __init__(self, error: ValidationError) -> None:
        lines = [_setting_problem(problem) for problem in error.errors(include_url=False)]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


def _setting_problem(problem: Any) -> str:
    if not problem["loc"]:  # a check across settings: its message names them
        return "  " + str(problem["msg"]).removeprefix("Value error, ")
    field = str(problem["loc"][0])
    message = str(problem["msg"]).removeprefix("Value error, ")
    # URLs may carry a password and keys are secret: show what was given only otherwise.
    shown = "" if field.endswith(("_url", "_key")) else f" (got {problem['input']!r})"
    return f"  {ENV_PREFIX}{field.upper()}: {message}{shown}"


@contextmanager
def operator_errors() -> Iterator[None]:
    try:
        yield
    except (NotFound, Conflict) as exc:
        raise click.ClickException(str(exc)) from exc


def ready_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions on a database migrated to head (every command may be the first run)."""
    engine = make_engine(settings)
    try:
        upgrade_schema(engine)
    except SchemaUnversioned as exc:
        raise click.ClickException(str(exc)) from exc
    return make_sessionmaker(engine)


def redacted(url: str) -> str:
    try:
        return make_url(url.split("+", 1)[1] if url.startswith("sqla+") else url).render_as_string(
            hide_password=True
        )
    except Exception:
        return url.split("@")[-1]


def stop_on_signals(stop: Any) -> None:
    def handler(signum: int, _frame: Any) -> None:
        # serve_forever's shutdown blocks until the loop exits: call it off-thread.
        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main() -> None:
    cli(prog_name="billsync")


# The commands register themselves on ``cli`` when imported.
from worker.cli import (  # noqa: E402,F401
    billing,
    dead_letters,
    integrations,
    processes,
    retention,  # `db prune`, in processes' db group
    schema_wait,  # `db wait`, in processes' db group
    tokens,
    zoho,
)
