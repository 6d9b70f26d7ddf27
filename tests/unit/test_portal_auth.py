"""Zoho data centres, OAuth refresh and grant-code exchange, against a mocked accounts server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import ValidationError

from schemas.api import DataCentre, PullSource
from worker.portal.auth import (
    DATA_CENTRES,
    CredentialsIncomplete,
    GrantExchangeFailed,
    OAuthToken,
    StaticToken,
    UnknownDataCentre,
    access_token_for,
    api_base_url,
    exchange_grant_code,
    hosts,
)
from worker.portal.client import PortalClient
from worker.portal.errors import PortalAuthFailed, PortalUnavailable

ACCOUNTS = "https://accounts.example.com"
CLIENT_ID = "1000.CLIENTID"
CLIENT_SECRET = "secret-client-secret-789"
REFRESH_TOKEN = "1000.secret-refresh-token.def456"
EXPIRES_IN = 3600


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Accounts:
    """A Zoho accounts server: answers the token endpoint, records what it was sent."""

    def __init__(self, answer: Callable[[dict[str, str]], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.issued = 0
        self._answer = answer or self._new_token

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(self.form(request))

    def _new_token(self, _form: dict[str, str]) -> httpx.Response:
        self.issued += 1
        return httpx.Response(
            200,
            json={
                "access_token": f"access-{self.issued}",
                "api_domain": "https://www.zohoapis.com",
                "token_type": "Bearer",
                "expires_in": EXPIRES_IN,
            },
        )

    @staticmethod
    def form(request: httpx.Request) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def error_answer(error: str, status: int = 200) -> Callable[[dict[str, str]], httpx.Response]:
    return lambda _form: httpx.Response(status, json={"error": error})


def oauth_token(accounts: Accounts, clock: Clock, **options: Any) -> OAuthToken:
    return OAuthToken(
        CLIENT_ID,
        CLIENT_SECRET,
        REFRESH_TOKEN,
        ACCOUNTS,
        clock=clock,
        transport=accounts.transport(),
        **options,
    )


# -- data centres ------------------------------------------------------------------------


@pytest.mark.parametrize("dc", get_args(DataCentre))
def test_every_data_centre_has_a_projects_api_host_and_an_accounts_host(dc: str) -> None:
    found = hosts(dc)
    assert httpx.URL(found.api_url).host.startswith("projectsapi.zoho")
    assert httpx.URL(found.accounts_url).host.startswith("accounts.zoho")
    assert found.api_url.startswith("https://") and found.accounts_url.startswith("https://")


def test_the_table_knows_exactly_the_data_centres_the_api_accepts() -> None:
    assert set(DATA_CENTRES) == set(get_args(DataCentre))


def test_canada_lives_on_zohocloud_ca() -> None:
    assert hosts("ca").accounts_url == "https://accounts.zohocloud.ca"
    assert hosts("ca").api_url == "https://projectsapi.zohocloud.ca"


def test_an_unknown_data_centre_is_refused_with_the_valid_codes() -> None:
    with pytest.raises(UnknownDataCentre) as raised:
        hosts("us")
    message = str(raised.value)
    assert "'us'" in message
    for dc in ("com", "eu", "in", "com.au", "jp", "ca", "sa", "com.cn"):
        assert dc in message


# -- refresh ------------------------------------------------------------------------------


def test_the_first_current_fetches_a_token_with_the_refresh_grant() -> None:
    accounts = Accounts()
    token = oauth_token(accounts, Clock())

    assert token.current() == "access-1"
    (request,) = accounts.requests
    assert request.method == "POST" and str(request.url) == f"{ACCOUNTS}/oauth/v2/token"
    assert accounts.form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


def test_secrets_travel_in_the_form_body_never_in_the_url() -> None:
    accounts = Accounts()
    oauth_token(accounts, Clock()).current()

    (request,) = accounts.requests
    assert request.url.query == b""
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    for secret in (CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in str(request.url)


def test_a_token_is_reused_while_it_has_more_than_the_margin_left() -> None:
    accounts, clock = Accounts(), Clock()
    token = oauth_token(accounts, clock)
    token.current()

    clock.now += EXPIRES_IN - 120
    assert token.current() == "access-1"
    assert len(accounts.requests) == 1


def test_a_token_is_refreshed_before_it_expires() -> None:
    accounts, clock = Accounts(), Clock()
    token = oauth_token(accounts, clock)
    token.current()

    clock.now += EXPIRES_IN - 30
    assert token.current() == "access-2"
    assert len(accounts.requests) == 2


def test_a_given_access_token_is_used_until_the_portal_refuses_it() -> None:
    accounts, clock = Accounts(), Clock()
    token = oauth_token(accounts, clock, access_token="given-token")

    clock.now += 10 * EXPIRES_IN
    assert token.current() == "given-token"
    assert accounts.requests == []


def test_renew_gets_a_new_token_even_when_the_current_one_looks_fresh() -> None:
    accounts = Accounts()
    token = oauth_token(accounts, Clock())
    token.current()

    assert token.renew() is True
    assert token.current() == "access-2"


def test_a_static_token_cannot_be_renewed() -> None:
    token = StaticToken("fixed")
    assert token.renew() is False
    assert token.current() == "fixed"


def test_after_a_401_the_client_renews_once_and_retries_with_the_new_token() -> None:
    accounts = Accounts()
    seen: list[str] = []

    def portal(request: httpx.Request) -> httpx.Response:
        if request.url.host == "accounts.example.com":
            return accounts(request)
        seen.append(request.headers["Authorization"])
        if request.headers["Authorization"] == "Zoho-oauthtoken stale-token":
            return httpx.Response(401, json={"error": {"code": 6401, "message": "expired"}})
        return httpx.Response(200, json={"users": [{"id": "1"}]})

    transport = httpx.MockTransport(portal)
    token = OAuthToken(
        CLIENT_ID,
        CLIENT_SECRET,
        REFRESH_TOKEN,
        ACCOUNTS,
        access_token="stale-token",
        clock=Clock(),
        transport=transport,
    )
    with PortalClient("https://projects.example.com", "7001", token, transport=transport) as client:
        pages = list(client.users())

    assert pages == [[{"id": "1"}]]
    assert seen == ["Zoho-oauthtoken stale-token", "Zoho-oauthtoken access-1"]


def test_a_refused_refresh_with_http_200_raises_auth_failed_without_the_secrets() -> None:
    accounts = Accounts(error_answer("invalid_client"))

    with pytest.raises(PortalAuthFailed) as raised:
        oauth_token(accounts, Clock()).current()

    assert raised.value.code == "oauth_refresh_failed"
    assert "invalid_client" in str(raised.value)
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, CLIENT_ID):
        assert secret not in str(raised.value)


def test_a_refused_refresh_with_an_error_status_raises_auth_failed() -> None:
    accounts = Accounts(error_answer("invalid_code", status=400))

    with pytest.raises(PortalAuthFailed) as raised:
        oauth_token(accounts, Clock()).current()

    assert raised.value.status == 400
    assert "invalid_code" in str(raised.value)


def test_an_answer_without_an_access_token_is_a_failed_refresh() -> None:
    accounts = Accounts(lambda _form: httpx.Response(200, json={"token_type": "Bearer"}))

    with pytest.raises(PortalAuthFailed):
        oauth_token(accounts, Clock()).current()


def test_an_accounts_server_in_trouble_is_unavailable_not_a_credentials_problem() -> None:
    accounts = Accounts(lambda _form: httpx.Response(503, text="maintenance"))

    with pytest.raises(PortalUnavailable):
        oauth_token(accounts, Clock()).current()


def test_an_unexpected_error_value_is_not_repeated() -> None:
    echoed = f"bad client_secret={CLIENT_SECRET}"
    accounts = Accounts(error_answer(echoed))

    with pytest.raises(PortalAuthFailed) as raised:
        oauth_token(accounts, Clock()).current()

    assert CLIENT_SECRET not in str(raised.value)


def test_the_token_repr_shows_no_secret() -> None:
    token = oauth_token(Accounts(), Clock(), access_token="given-token")
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, "given-token"):
        assert secret not in repr(token)


# -- grant-code exchange ------------------------------------------------------------------


def test_a_grant_code_is_exchanged_for_a_refresh_token() -> None:
    def answer(form: dict[str, str]) -> httpx.Response:
        assert form == {
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code": "1000.grant-code",
        }
        return httpx.Response(
            200,
            json={
                "access_token": "access-1",
                "refresh_token": "1000.new-refresh-token",
                "api_domain": "https://www.zohoapis.eu",
                "token_type": "Bearer",
                "expires_in": 3600,
            },
        )

    accounts = Accounts(answer)
    result = exchange_grant_code(
        ACCOUNTS, CLIENT_ID, CLIENT_SECRET, "1000.grant-code", transport=accounts.transport()
    )

    assert result.refresh_token == "1000.new-refresh-token"
    assert result.access_token == "access-1"
    assert result.expires_in == 3600
    assert result.api_domain == "https://www.zohoapis.eu"
    assert accounts.requests[0].url.query == b""


def test_an_expired_or_used_grant_code_is_explained() -> None:
    accounts = Accounts(error_answer("invalid_code"))

    with pytest.raises(GrantExchangeFailed) as raised:
        exchange_grant_code(
            ACCOUNTS, CLIENT_ID, CLIENT_SECRET, "1000.old-code", transport=accounts.transport()
        )

    assert raised.value.code == "invalid_code"
    assert "expired" in str(raised.value) and "generate a new one" in str(raised.value)
    assert CLIENT_SECRET not in str(raised.value)


def test_an_answer_without_a_refresh_token_is_a_failed_exchange() -> None:
    accounts = Accounts(lambda _form: httpx.Response(200, json={"access_token": "a"}))

    with pytest.raises(GrantExchangeFailed) as raised:
        exchange_grant_code(ACCOUNTS, CLIENT_ID, CLIENT_SECRET, "c", transport=accounts.transport())

    assert raised.value.code == "no_refresh_token"


# -- from a pull source -------------------------------------------------------------------


def refresh_source(**credentials: str) -> dict[str, Any]:
    return {
        "dc": "eu",
        "base_url": None,
        "credentials": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            **credentials,
        },
    }


def test_refresh_credentials_refresh_at_the_data_centres_accounts_host() -> None:
    accounts = Accounts()

    access_token_for(refresh_source(), transport=accounts.transport(), clock=Clock()).current()

    assert str(accounts.requests[0].url) == "https://accounts.zoho.eu/oauth/v2/token"


def test_an_explicit_accounts_url_wins_over_the_data_centre() -> None:
    accounts = Accounts()
    source = refresh_source(accounts_url=ACCOUNTS)

    access_token_for(source, transport=accounts.transport(), clock=Clock()).current()

    assert str(accounts.requests[0].url) == f"{ACCOUNTS}/oauth/v2/token"


def test_an_access_token_alone_is_a_static_token() -> None:
    token = access_token_for({"credentials": {"access_token": "fixed"}})
    assert isinstance(token, StaticToken) and token.current() == "fixed"


def test_a_source_without_usable_credentials_names_what_it_needs() -> None:
    with pytest.raises(CredentialsIncomplete) as raised:
        access_token_for({"credentials": {"client_id": CLIENT_ID}})
    assert "refresh_token" in str(raised.value) and CLIENT_ID not in str(raised.value)


def test_the_api_base_url_is_the_sources_when_set() -> None:
    assert api_base_url({"base_url": "http://portal.test/", "dc": "eu"}) == "http://portal.test"


def test_the_api_base_url_is_the_data_centres_otherwise() -> None:
    assert api_base_url({"base_url": None, "dc": "eu"}) == "https://projectsapi.zoho.eu"
    assert api_base_url({}) == "https://projectsapi.zoho.com"


def test_token_answers_in_milliseconds_are_read_as_seconds() -> None:
    clock = Clock()
    accounts = Accounts(
        lambda _form: httpx.Response(200, json={"access_token": "a", "expires_in": 3_600_000})
    )
    token = oauth_token(accounts, clock)
    token.current()

    clock.now += 3600 - 30
    token.current()
    assert len(accounts.requests) == 2


# -- the pull source's contract -----------------------------------------------------------


@pytest.mark.parametrize(
    "credentials",
    [
        {"access_token": "t"},
        {"client_id": "i", "client_secret": "s", "refresh_token": "r"},
        {"client_id": "i", "client_secret": "s", "refresh_token": "r", "accounts_url": "u"},
        {"client_id": "i", "client_secret": "s", "refresh_token": "r", "access_token": "t"},
    ],
)
def test_a_source_takes_an_access_token_or_a_refresh_set(credentials: dict[str, str]) -> None:
    PullSource.model_validate({"credentials": credentials})


@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"client_id": "i", "client_secret": "s"},
        {"access_token": "t", "accounts_url": "u"},
        {"access_token": "t", "password": "p"},
    ],
)
def test_other_credential_sets_are_refused_by_name(credentials: dict[str, str]) -> None:
    with pytest.raises(ValidationError) as raised:
        PullSource.model_validate({"credentials": credentials})
    assert "either {access_token} or {client_id, client_secret, refresh_token}" in str(raised.value)


def test_an_empty_credential_is_refused() -> None:
    with pytest.raises(ValidationError, match="access_token must not be empty"):
        PullSource.model_validate({"credentials": {"access_token": " "}})


def test_a_source_defaults_to_the_us_data_centre_and_its_host() -> None:
    source = PullSource.model_validate({"credentials": {"access_token": "t"}})
    assert source.dc == "com" and source.base_url is None


def test_an_unknown_data_centre_is_refused_by_the_contract() -> None:
    with pytest.raises(ValidationError):
        PullSource.model_validate({"dc": "us", "credentials": {"access_token": "t"}})
