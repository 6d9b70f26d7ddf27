"""``billsync token …`` and ``billsync keys rotate``: API tokens and the credential key."""

from __future__ import annotations

import json

import click

from schemas.tokens import TokenView
from worker.accounts import ROLES, issue_token, list_tokens, revoke_token
from worker.cli import cli, operator_errors, ready_sessions, settings_of
from worker.db import ApiToken
from worker.integrations import CredentialKeyError, rotate_keys


@cli.group()
def token() -> None:
    """API bearer tokens: create, list, revoke."""


@token.command("create")
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--name", default=None, help="A label to tell the token apart in the list.")
@click.pass_context
def token_create(ctx: click.Context, organization_id: str, role: str, name: str | None) -> None:
    """Create a token for an organization; prints it once (only its hash is kept)."""
    sessions = ready_sessions(settings_of(ctx))
    with operator_errors(), sessions.begin() as session:
        issued = issue_token(
            session, organization_id, "admin" if role == "admin" else "viewer", name
        )
        answer = {
            **token_view(issued.row).model_dump(mode="json"),
            "organization_id": organization_id,
        }
    click.echo(json.dumps({**answer, "token": issued.token}))


@token.command("list")
@click.option("--org", "organization_id", required=True, help="Organization id.")
@click.pass_context
def token_list(ctx: click.Context, organization_id: str) -> None:
    """The organization's tokens, one JSON object a line (never the token itself)."""
    sessions = ready_sessions(settings_of(ctx))
    with sessions() as session:
        for row in list_tokens(session, organization_id):
            click.echo(json.dumps(token_view(row).model_dump(mode="json")))


@token.command("revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke token TOKEN_ID: the API and the status page refuse it at once."""
    sessions = ready_sessions(settings_of(ctx))
    with operator_errors(), sessions.begin() as session:
        answer = token_view(revoke_token(session, token_id))
    click.echo(json.dumps(answer.model_dump(mode="json")))


def token_view(row: ApiToken) -> TokenView:
    return TokenView.model_validate(row)


@cli.group()
def keys() -> None:
    """The credential key (BILLSYNC_CREDENTIAL_KEY) that encrypts secrets at rest."""


@keys.command("rotate")
@click.pass_context
def keys_rotate(ctx: click.Context) -> None:
    """Re-encrypt every stored secret with the first key of BILLSYNC_CREDENTIAL_KEY.

    To rotate: set BILLSYNC_CREDENTIAL_KEY=NEW,OLD for the gateway and the worker,
    run this, then drop OLD. Secrets still stored in clear are encrypted too.
    """
    settings = settings_of(ctx)
    sessions = ready_sessions(settings)
    try:
        with sessions.begin() as session:
            report = rotate_keys(session, settings)
    except CredentialKeyError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(report.view()))
