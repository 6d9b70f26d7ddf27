"""``billsync zoho …``: get a refresh token for a Zoho self client, make a credential key."""

from __future__ import annotations

import json

import click
import httpx

from worker.cli import cli
from worker.integrations import new_key
from worker.portal import DATA_CENTRES, GrantExchangeFailed, exchange_grant_code, hosts

# Tests put an httpx.MockTransport here; None is the network.
TRANSPORT: httpx.BaseTransport | None = None


@cli.group()
def zoho() -> None:
    """Zoho accounts: turn a self client's grant code into a refresh token, make a key.

    billsync reads a portal as a Zoho self client (made in Zoho's API console):
    with its client id and secret, and a refresh token that `billsync zoho token`
    gets once from a grant code.
    """


@zoho.command("token")
@click.option(
    "--dc",
    type=click.Choice(list(DATA_CENTRES)),
    default="com",
    show_default=True,
    help="The Zoho data centre of the account (the domain suffix of its Zoho URLs; "
    "ca is zohocloud.ca).",
)
@click.option("--client-id", required=True, help="The self client's Client ID.")
@click.option(
    "--client-secret",
    required=True,
    envvar="ZOHO_CLIENT_SECRET",
    show_envvar=True,
    help="The self client's Client Secret. Prefer the environment variable: it keeps "
    "the secret out of the shell history.",
)
@click.option(
    "--code",
    required=True,
    help="A grant code from the self client's Generate Code tab, made with read "
    "scopes for what billsync pulls (ZohoProjects.portals.READ, "
    "ZohoProjects.projects.READ, ZohoProjects.tasks.READ, …; each module's scope is "
    "in the Zoho Projects API docs). It works once, within the minutes chosen there.",
)
@click.option(
    "--accounts-url",
    hidden=True,
    help="Accounts server to ask instead of the data centre's (tests, proxies).",
)
def zoho_token(
    dc: str, client_id: str, client_secret: str, code: str, accounts_url: str | None
) -> None:
    """Exchange a self client's grant code for a refresh token.

    Prints {"refresh_token", "access_token_expires_in", "dc"} as JSON. Put the
    refresh token with the client id and secret into the integration's
    source.credentials; billsync gets access tokens from it from then on.
    """
    try:
        result = exchange_grant_code(
            accounts_url or hosts(dc).accounts_url,
            client_id,
            client_secret,
            code,
            transport=TRANSPORT,
        )
    except GrantExchangeFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "refresh_token": result.refresh_token,
                "access_token_expires_in": result.expires_in,
                "dc": dc,
            }
        )
    )
    click.echo(
        f'Connect with "source": {{"dc": "{dc}", "credentials": {{"client_id": "…", '
        '"client_secret": "…", "refresh_token": "<refresh_token above>"}}}; '
        "billsync stores them encrypted.",
        err=True,
    )


@zoho.command("key")
def zoho_key() -> None:
    """Print a new credential key for BILLSYNC_CREDENTIAL_KEY.

    The key encrypts the portal credentials billsync stores. Give the gateway and
    the worker the same key, and keep it: credentials stored with a lost key must
    be entered again.
    """
    click.echo(new_key())
