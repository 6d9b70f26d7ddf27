"""`billsync zoho token` and `billsync zoho key`, with a mocked accounts server."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from worker.cli import cli
from worker.cli import zoho as zoho_cli

CLIENT_SECRET = "secret-client-secret-789"
Answer = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Callable[[Answer], list[httpx.Request]]:
    """Route the command's requests to ``answer``; the requests are recorded."""

    def install(answer: Answer) -> list[httpx.Request]:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return answer(request)

        monkeypatch.setattr(zoho_cli, "TRANSPORT", httpx.MockTransport(handler))
        return seen

    return install


def token(*args: str, env: dict[str, str] | None = None) -> Result:
    base = ["zoho", "token", "--client-id", "1000.CLIENTID", "--code", "1000.grant-code"]
    return CliRunner().invoke(cli, [*base, *args], env=env)


def granted(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={"access_token": "a", "refresh_token": "1000.new-refresh", "expires_in": 3600},
    )


def test_token_prints_the_refresh_token_as_json(accounts: Callable[[Answer], object]) -> None:
    accounts(granted)

    result = token("--dc", "eu", "--client-secret", CLIENT_SECRET)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "refresh_token": "1000.new-refresh",
        "access_token_expires_in": 3600,
        "dc": "eu",
    }
    assert "source" in result.stderr and "refresh_token" in result.stderr


def test_token_asks_the_data_centres_accounts_server(
    accounts: Callable[[Answer], list[httpx.Request]],
) -> None:
    seen = accounts(granted)

    token("--dc", "ca", "--client-secret", CLIENT_SECRET)

    assert str(seen[0].url) == "https://accounts.zohocloud.ca/oauth/v2/token"


def test_the_client_secret_may_come_from_the_environment(
    accounts: Callable[[Answer], list[httpx.Request]],
) -> None:
    seen = accounts(granted)

    result = token(env={"ZOHO_CLIENT_SECRET": CLIENT_SECRET})

    assert result.exit_code == 0, result.output
    form = parse_qs(seen[0].content.decode())
    assert form["client_secret"] == [CLIENT_SECRET]


def test_an_invalid_code_exits_1_with_a_message_not_a_traceback(
    accounts: Callable[[Answer], object],
) -> None:
    accounts(lambda _request: httpx.Response(200, json={"error": "invalid_code"}))

    result = token("--client-secret", CLIENT_SECRET)

    assert result.exit_code == 1
    assert "invalid_code" in result.stderr and "generate a new one" in result.stderr
    assert "Traceback" not in result.output
    assert CLIENT_SECRET not in result.output


def test_the_accounts_url_may_be_given_instead_of_a_data_centre(
    accounts: Callable[[Answer], list[httpx.Request]],
) -> None:
    seen = accounts(granted)

    token("--client-secret", CLIENT_SECRET, "--accounts-url", "http://accounts.test")

    assert str(seen[0].url) == "http://accounts.test/oauth/v2/token"


def test_key_prints_a_new_fernet_key() -> None:
    result = CliRunner().invoke(cli, ["zoho", "key"])

    assert result.exit_code == 0
    Fernet(result.stdout.strip())  # a valid key
