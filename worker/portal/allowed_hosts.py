"""Which hosts a pull source may send the portal's credentials to.

A pull sends the OAuth access token to ``base_url`` and the client secret and
refresh token to ``credentials.accounts_url``. Left open, a source pointing at an
internal address would turn the pull into a request forgery that carries Zoho
credentials (SSRF). So both must name a Zoho host of the data-centre table
(``worker.portal.auth.DATA_CENTRES``) over https, unless the operator lists more
hosts in ``BILLSYNC_PORTAL_ALLOWED_HOSTS`` (a test or fake portal; http allowed
there, since such a portal is usually local).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

from worker.errors import Refused
from worker.portal.auth import DATA_CENTRES
from worker.settings import Settings

__all__ = [
    "SETTING",
    "PortalHostRefused",
    "allowed_patterns",
    "check_source_hosts",
    "check_url",
]

SETTING = "BILLSYNC_PORTAL_ALLOWED_HOSTS"
Role = Literal["api", "accounts"]

_HINT = (
    f"to reach another host (a test or fake portal), add it to {SETTING} "
    "(comma-separated host[:port] patterns) for the gateway and the worker"
)
_DEFAULT_PORTS = {"https": 443, "http": 80}
_ZOHO_HOSTS: dict[Role, frozenset[str]] = {
    "api": frozenset(urlsplit(h.api_url).hostname or "" for h in DATA_CENTRES.values()),
    "accounts": frozenset(urlsplit(h.accounts_url).hostname or "" for h in DATA_CENTRES.values()),
}


class PortalHostRefused(Refused):
    """A pull source names a host its credentials may not be sent to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field  # where in the source: "base_url" or "credentials.accounts_url"


def allowed_patterns(settings: Settings) -> tuple[str, ...]:
    """The operator's extra ``host[:port]`` patterns, lower-cased."""
    return tuple(
        part.strip().lower() for part in settings.portal_allowed_hosts.split(",") if part.strip()
    )


def check_url(url: str, role: Role, field: str, settings: Settings) -> None:
    """Refuse ``url`` unless it is a Zoho ``role`` host over https, or matches the setting."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise PortalHostRefused(field, f"{field} {url!r} is not a URL; {_HINT}") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in _DEFAULT_PORTS or not host:
        raise PortalHostRefused(field, f"{field} must be an http(s) URL with a host; {_HINT}")
    if parts.username is not None or parts.password is not None:
        # user:password@ in the URL would be sent along and hides the real host from readers.
        raise PortalHostRefused(field, f"{field} must not carry a user name or password; {_HINT}")
    if _is_zoho(parts, host, port, role) or _matches_setting(parts, host, port, settings):
        return
    kind = "Zoho Projects API" if role == "api" else "Zoho accounts"
    raise PortalHostRefused(
        field,
        f"{field} host {_netloc(host, port)!r} is not allowed: the portal's credentials are "
        f"sent only to the {kind} hosts of the data centres over https "
        f"({', '.join(sorted(_ZOHO_HOSTS[role]))}); {_HINT}",
    )


def check_source_hosts(source: Mapping[str, Any], settings: Settings) -> None:
    """Check a pull source's ``base_url`` and ``credentials.accounts_url``, when given."""
    base_url = source.get("base_url")
    if base_url:
        check_url(str(base_url), "api", "base_url", settings)
    credentials: Mapping[str, Any] = source.get("credentials") or {}
    accounts_url = credentials.get("accounts_url")
    if accounts_url:
        check_url(str(accounts_url), "accounts", "credentials.accounts_url", settings)


def _is_zoho(parts: SplitResult, host: str, port: int | None, role: Role) -> bool:
    return parts.scheme == "https" and port in (None, 443) and host in _ZOHO_HOSTS[role]


def _matches_setting(parts: SplitResult, host: str, port: int | None, settings: Settings) -> bool:
    port = port or _DEFAULT_PORTS[parts.scheme]
    return any(_matches(pattern, host, port) for pattern in allowed_patterns(settings))


def _matches(pattern: str, host: str, port: int) -> bool:
    """``host``, ``host:port``, ``*.domain[:port]``, ``[v6 address][:port]``; no port: any."""
    if pattern.startswith("["):
        host_pattern, _, rest = pattern[1:].partition("]")
        port_pattern = rest.removeprefix(":") or None
    else:
        host_pattern, _, port_text = pattern.partition(":")
        port_pattern = port_text or None
    if port_pattern is not None and port_pattern != "*" and port_pattern != str(port):
        return False
    if host_pattern.startswith("*."):
        return host.endswith(host_pattern[1:])
    return host == host_pattern


def _netloc(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets
    return shown if port is None else f"{shown}:{port}"
