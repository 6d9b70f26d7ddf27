"""Access tokens for the portal API: data centres, OAuth refresh, grant-code exchange.

A Zoho account lives in one data centre, and both its Projects API host and its
accounts (OAuth) host depend on it. A pull source names its data centre (``dc``)
and carries either a fixed access token or a self client's id, secret and refresh
token; ``access_token_for`` turns that into the ``AccessToken`` the client asks
for a token before every request.

Zoho's token endpoint (``{accounts}/oauth/v2/token``) takes its parameters in the
form body here, never in the query string: URLs end up in logs. It answers
refusals with HTTP 200 and ``{"error": "invalid_code"}`` (or ``invalid_client``),
so a 2xx is not taken as success by itself. Nothing in this module logs a
credential or puts one into an exception's text.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from worker.errors import ConfigurationError, Refused
from worker.portal.errors import PortalAuthFailed, PortalUnavailable

__all__ = [
    "DATA_CENTRES",
    "REFRESH_MARGIN_SECONDS",
    "AccessToken",
    "CredentialsIncomplete",
    "GrantExchangeFailed",
    "GrantResult",
    "Hosts",
    "OAuthToken",
    "StaticToken",
    "UnknownDataCentre",
    "access_token_for",
    "api_base_url",
    "exchange_grant_code",
    "hosts",
]

# Refresh this long before the token runs out, so a request never leaves with a
# token that expires on the way.
REFRESH_MARGIN_SECONDS = 60.0
# What Zoho documents for an access token's life, used when an answer omits it.
DEFAULT_EXPIRES_IN = 3600
REFRESH_CREDENTIALS = ("client_id", "client_secret", "refresh_token")
# Zoho's error values are short codes (``invalid_code``); anything else is not
# repeated, so an unexpected echo of the request cannot leak into a message.
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


class AccessToken(Protocol):
    """Where the client gets the ``Zoho-oauthtoken`` it sends."""

    def current(self) -> str:
        """A token valid now (refreshed first when it is missing or about to expire)."""
        ...

    def renew(self) -> bool:
        """The portal answered 401: get a new token. False when this source cannot."""
        ...


class StaticToken:
    """A fixed access token (tests, or a token minted elsewhere): never renewed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def current(self) -> str:
        return self._token

    def renew(self) -> bool:
        return False


# -- data centres -------------------------------------------------------------------


@dataclass(frozen=True)
class Hosts:
    """A data centre's Zoho Projects API host and its accounts (OAuth) host."""

    api_url: str
    accounts_url: str


# Accounts hosts: Zoho's own list, https://www.zoho.com/accounts/protocol/oauth/multi-dc.html
# (com, eu, in, com.au, jp, zohocloud.ca, sa, uk); China from Zoho's CRM and Bigin
# multi-DC pages (https://www.zoho.com/crm/developer/docs/api/v8/multi-dc.html,
# https://www.bigin.com/developer/docs/apis/multi-dc.html): accounts.zoho.com.cn.
# Projects API hosts: Zoho documents only https://projectsapi.zoho.com
# (https://projects.zoho.com/api-docs, "API Root Endpoint"). The others are
# UNCONFIRMED by Zoho: they come from third-party code (SparkAIUR/zoho-sdk,
# src/zoho/client.py, _PROJECTS_API_DOMAIN_BY_DC, for eu, in, com.au, jp, ca, sa,
# com.cn) and follow the pattern Zoho documents for its other products. Canada is
# zohocloud.ca for accounts (Zoho's list) and, in that SDK, for the Projects API
# too; some other projects use projectsapi.zoho.ca, so Canada's API host is the
# least certain. The UK API host (projectsapi.zoho.uk) is seen only in third-party
# code. A source with ``base_url`` set overrides the API host when one is wrong.
DATA_CENTRES: dict[str, Hosts] = {
    "com": Hosts("https://projectsapi.zoho.com", "https://accounts.zoho.com"),
    "eu": Hosts("https://projectsapi.zoho.eu", "https://accounts.zoho.eu"),
    "in": Hosts("https://projectsapi.zoho.in", "https://accounts.zoho.in"),
    "com.au": Hosts("https://projectsapi.zoho.com.au", "https://accounts.zoho.com.au"),
    "jp": Hosts("https://projectsapi.zoho.jp", "https://accounts.zoho.jp"),
    "ca": Hosts("https://projectsapi.zohocloud.ca", "https://accounts.zohocloud.ca"),
    "sa": Hosts("https://projectsapi.zoho.sa", "https://accounts.zoho.sa"),
    "com.cn": Hosts("https://projectsapi.zoho.com.cn", "https://accounts.zoho.com.cn"),
    "uk": Hosts("https://projectsapi.zoho.uk", "https://accounts.zoho.uk"),
}


class UnknownDataCentre(Refused):
    """A data-centre code billsync does not know; the message lists the known ones."""

    def __init__(self, dc: str) -> None:
        super().__init__(f"unknown Zoho data centre {dc!r}; use one of: {', '.join(DATA_CENTRES)}")
        self.dc = dc


def hosts(dc: str) -> Hosts:
    """The Projects API and accounts hosts of data centre ``dc`` (``com``, ``eu``, …)."""
    try:
        return DATA_CENTRES[dc]
    except KeyError:
        raise UnknownDataCentre(dc) from None


# -- OAuth refresh -------------------------------------------------------------------


class OAuthToken:
    """Access tokens from a refresh token (Zoho's ``refresh_token`` grant).

    The first ``current()`` fetches a token unless one was given; later calls reuse
    it until it is within ``REFRESH_MARGIN_SECONDS`` of its ``expires_in``. A given
    token's age is unknown, so it is used until the portal answers 401, when the
    client calls ``renew()``. ``clock`` is injected so tests move time by hand.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        accounts_url: str,
        *,
        access_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._token_url = accounts_url.rstrip("/") + "/oauth/v2/token"
        self._token = access_token or None
        self._expires_at: float | None = None  # None: unknown (a given token)
        self._clock = clock
        self._transport = transport
        self._timeout = timeout_seconds
        self._lock = threading.Lock()  # one refresh at a time if threads share it

    def __repr__(self) -> str:
        return f"OAuthToken(token_url={self._token_url!r})"

    def current(self) -> str:
        with self._lock:
            if self._token is None or self._expiring():
                self._refresh()
            assert self._token is not None
            return self._token

    def renew(self) -> bool:
        with self._lock:
            self._refresh()
        return True

    def _expiring(self) -> bool:
        if self._expires_at is None:
            return False
        return self._clock() >= self._expires_at - REFRESH_MARGIN_SECONDS

    def _refresh(self) -> None:
        body = _post_token_request(
            self._token_url,
            {
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
            transport=self._transport,
            timeout_seconds=self._timeout,
            failure=lambda status, code: PortalAuthFailed(
                status,
                "oauth_refresh_failed",
                f"{code} (Zoho accounts refused the refresh token; make a new one with "
                "`billsync zoho token` and update the integration's source)",
            ),
        )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise PortalAuthFailed(200, "oauth_refresh_failed", "no access token in the answer")
        self._token = token
        self._expires_at = self._clock() + _expires_in(body)


# -- grant-code exchange --------------------------------------------------------------


@dataclass(frozen=True)
class GrantResult:
    """What a self client's grant code was exchanged for."""

    refresh_token: str
    access_token: str
    expires_in: int
    api_domain: str | None = None

    def __repr__(self) -> str:  # the tokens are secrets: keep them out of reprs and logs
        return f"GrantResult(expires_in={self.expires_in}, api_domain={self.api_domain!r})"


class GrantExchangeFailed(ConfigurationError):
    """Zoho refused to exchange a grant code; ``code`` is Zoho's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_GRANT_HINTS = {
    "invalid_code": (
        "the grant code is wrong, already used or expired (a self client's code "
        "lives only the few minutes chosen when it was generated): generate a new one"
    ),
    "invalid_client": (
        "the client id or secret is wrong, or the client belongs to another data "
        "centre than the one asked (--dc)"
    ),
    "invalid_client_secret": "the client secret is wrong",
}


def exchange_grant_code(
    accounts_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout_seconds: float = 30.0,
) -> GrantResult:
    """Exchange a self client's grant code for a refresh token (``authorization_code``).

    Raises ``GrantExchangeFailed`` with Zoho's error code and a hint when Zoho refuses.
    """

    def failure(status: int, error: str) -> GrantExchangeFailed:
        hint = _GRANT_HINTS.get(error, f"Zoho accounts answered {status}")
        return GrantExchangeFailed(error, f"grant code not accepted ({error}): {hint}")

    try:
        body = _post_token_request(
            accounts_url.rstrip("/") + "/oauth/v2/token",
            {
                "grant_type": "authorization_code",
                "client_id": client_id,
                "client_secret": client_secret,
                "code": code,
            },
            transport=transport,
            timeout_seconds=timeout_seconds,
            failure=failure,
        )
    except PortalUnavailable as exc:
        raise GrantExchangeFailed("unreachable", str(exc)) from exc
    refresh_token = body.get("refresh_token")
    access_token = body.get("access_token")
    if not isinstance(refresh_token, str) or not refresh_token:
        raise GrantExchangeFailed(
            "no_refresh_token",
            "Zoho answered without a refresh token; generate the grant code from a "
            "self client in the API console (its codes give offline access)",
        )
    api_domain = body.get("api_domain")
    return GrantResult(
        refresh_token=refresh_token,
        access_token=access_token if isinstance(access_token, str) else "",
        expires_in=_expires_in(body),
        api_domain=api_domain if isinstance(api_domain, str) else None,
    )


# -- from a pull source ---------------------------------------------------------------


class CredentialsIncomplete(ConfigurationError):
    """A pull source's credentials are neither an access token nor a refresh set."""


def access_token_for(
    source: Mapping[str, Any],
    *,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AccessToken:
    """The token provider for a decrypted pull source (``dc``, ``credentials``).

    With ``client_id``, ``client_secret`` and ``refresh_token``: OAuth refresh at the
    data centre's accounts host, or at ``credentials.accounts_url`` when given (a
    test server, or a host the table has wrong). With only ``access_token``: that
    token, never renewed.
    """
    credentials: Mapping[str, str] = source.get("credentials") or {}
    if all(credentials.get(name) for name in REFRESH_CREDENTIALS):
        accounts_url = credentials.get("accounts_url") or hosts(_dc(source)).accounts_url
        return OAuthToken(
            credentials["client_id"],
            credentials["client_secret"],
            credentials["refresh_token"],
            accounts_url,
            access_token=credentials.get("access_token") or None,
            clock=clock,
            transport=transport,
        )
    if credentials.get("access_token"):
        return StaticToken(credentials["access_token"])
    raise CredentialsIncomplete(
        "the pull source needs credentials: either access_token, or client_id, "
        f"client_secret and refresh_token (it has: {', '.join(sorted(credentials)) or 'none'})"
    )


def api_base_url(source: Mapping[str, Any]) -> str:
    """The portal API's base URL: ``source.base_url`` when set, else the data centre's."""
    base_url = source.get("base_url")
    if base_url:
        return str(base_url).rstrip("/")
    return hosts(_dc(source)).api_url


def _dc(source: Mapping[str, Any]) -> str:
    return str(source.get("dc") or "com")


# -- the token endpoint ---------------------------------------------------------------


def _post_token_request(
    url: str,
    form: dict[str, str],
    *,
    transport: httpx.BaseTransport | None,
    timeout_seconds: float,
    failure: Callable[[int, str], Exception],
) -> dict[str, Any]:
    """POST the form to Zoho's token endpoint; its JSON, or ``failure(status, code)``.

    429 and 5xx are the accounts server's trouble, not the credentials':
    ``PortalUnavailable``, so the next run tries again.
    """
    try:
        with httpx.Client(transport=transport, timeout=timeout_seconds) as http:
            response = http.post(url, data=form)
    except httpx.TransportError as exc:
        raise PortalUnavailable(
            f"Zoho accounts unreachable ({type(exc).__name__}) at {url}"
        ) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise PortalUnavailable(f"Zoho accounts answered {response.status_code} at {url}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise failure(response.status_code, f"http_{response.status_code}")
    error = body.get("error")
    if error or not response.is_success:
        raise failure(response.status_code, _error_code(error, response.status_code))
    return body


def _error_code(error: Any, status: int) -> str:
    if isinstance(error, str) and _ERROR_CODE.match(error):
        return error
    return f"http_{status}"


def _expires_in(body: Mapping[str, Any]) -> int:
    """Seconds the access token lives. Older answers had ``expires_in`` in
    milliseconds next to ``expires_in_sec``; prefer the latter when present."""
    for key in ("expires_in_sec", "expires_in"):
        try:
            seconds = int(body[key])
        except (KeyError, TypeError, ValueError):
            continue
        if seconds > 0:
            return seconds // 1000 if seconds > 86_400 else seconds
    return DEFAULT_EXPIRES_IN
