"""An HTTP client of the portal's REST API (the shapes are in ``worker.portal``).

It pages, retries what is worth retrying (429 and 5xx, honouring ``Retry-After``,
and connection errors) with capped exponential back-off, refreshes an expired
OAuth access token once when refresh credentials were given, and never logs or
raises with the credentials in the text.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

import httpx

__all__ = [
    "PortalAuthFailed",
    "PortalClient",
    "PortalError",
    "PortalUnavailable",
]

log = logging.getLogger(__name__)

CHILD_PATHS = {
    "milestones": "milestones",
    "tasklists": "tasklists",
    "tasks": "tasks",
    "bugs": "bugs",
    "timesheets": "timelogs",
}
RETRYABLE = {429, 500, 502, 503, 504}


class PortalError(Exception):
    """The portal answered with an error billsync cannot retry its way out of."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"portal answered {status} {code}: {message}")
        self.status = status
        self.code = code


class PortalAuthFailed(PortalError):
    """401/403: the integration's portal credentials are wrong or expired."""


class PortalUnavailable(Exception):
    """The portal kept failing (429/5xx/network) after every retry."""


class PortalClient:
    """One portal, one set of credentials. Use as a context manager or call close()."""

    def __init__(
        self,
        base_url: str,
        portal_id: str,
        credentials: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        per_page: int = 200,
        max_retries: int = 6,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 120.0,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._http = httpx.Client(
            base_url=f"{base_url.rstrip('/')}/api/v3/portal/{portal_id}",
            transport=transport,
            timeout=timeout_seconds,
        )
        self._accounts = httpx.Client(transport=transport, timeout=timeout_seconds)
        self._credentials = dict(credentials)
        self._access_token = self._credentials.get("access_token", "")
        self.per_page = per_page
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep
        self.calls = 0

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()
        self._accounts.close()

    # -- lists ---------------------------------------------------------------------

    def projects(self, since_ms: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Pages of projects, oldest modification first, modified at or after ``since_ms``."""
        params: dict[str, Any] = {"sort_column": "last_modified_time", "sort_order": "ascending"}
        if since_ms is not None:
            params["last_modified_time"] = since_ms
        return self._pages("/projects", "projects", params)

    def project_clients(self, project_id: str) -> list[dict[str, Any]]:
        """The project's client companies; the first is its primary client."""
        body = self._get(f"/projects/{project_id}/clients", {})
        return list(body.get("clients") or []) if body else []

    def users(self) -> Iterator[list[dict[str, Any]]]:
        return self._pages("/users", "users", {})

    def children(
        self, module: str, project_id: str, since_ms: int | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of milestones, task lists, tasks or bugs of one project.

        ``since_ms`` is sent where the API has a changed-since filter (milestones and
        task lists); tasks and bugs have none and always come whole.
        """
        params: dict[str, Any] = {}
        if since_ms is not None and module in ("milestones", "tasklists"):
            params["last_modified_time"] = since_ms
        path = CHILD_PATHS[module]
        return self._pages(f"/projects/{project_id}/{path}", path, params)

    def timelogs(
        self, project_id: str, start: date, end: date, *, by_modified_time: bool
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of one project's time logs in a window of at most six months.

        By modification date with ``by_modified_time``, else by log date. Date groups
        are flattened: each log carries its own ``date``.
        """
        params: dict[str, Any] = {
            "view_type": "customdate",
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
        }
        if by_modified_time:
            params["fetch_by_modified_time"] = "true"
        for groups in self._pages(f"/projects/{project_id}/timelogs", "time_logs", params):
            yield [_with_date(log, group) for group in groups for log in _group_logs(group)]

    def exists(self, module: str, record_id: str, project_id: str | None = None) -> bool:
        """Whether the record is still in the portal (a 404 means it was deleted)."""
        if module == "projects":
            path = f"/projects/{record_id}"
        else:
            path = f"/projects/{project_id}/{CHILD_PATHS[module]}/{record_id}"
        try:
            self._get(path, {})
        except PortalError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- transport -----------------------------------------------------------------

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        page = 1
        while True:
            body = self._get(path, {**params, "page": page, "per_page": self.per_page})
            items = list((body or {}).get(key) or [])
            if items:
                yield items
            if not items or not _has_next_page(body or {}):
                return
            page += 1

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """GET with retries; None for 204 No Content."""
        refreshed = False
        attempt = 0
        while True:
            try:
                self.calls += 1
                response = self._http.get(path, params=params, headers=self._auth_header())
            except httpx.TransportError as exc:
                attempt = self._wait_before_retry(attempt, path, type(exc).__name__, None)
                continue
            if response.status_code == 401 and not refreshed and self._can_refresh():
                self._refresh_access_token()
                refreshed = True
                continue
            if response.status_code in RETRYABLE:
                retry_after = _retry_after(response)
                attempt = self._wait_before_retry(
                    attempt, path, str(response.status_code), retry_after
                )
                continue
            if response.is_success:
                if response.status_code == 204 or not response.content:
                    return None
                body: dict[str, Any] = response.json()
                return body
            code, message = _error_of(response)
            error_class = PortalAuthFailed if response.status_code in (401, 403) else PortalError
            raise error_class(response.status_code, code, message)

    def _wait_before_retry(
        self, attempt: int, path: str, reason: str, retry_after: float | None
    ) -> int:
        if attempt >= self._max_retries:
            raise PortalUnavailable(f"GET {path}: {reason} after {attempt + 1} attempts")
        delay = retry_after
        if delay is None:
            delay = self._backoff * 2**attempt
            delay = random.uniform(delay / 2, delay)  # jitter: many pullers do not retry in step
        delay = min(delay, self._max_backoff)
        log.warning("portal GET %s answered %s; retrying in %.1fs", path, reason, delay)
        self._sleep(delay)
        return attempt + 1

    def _auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Zoho-oauthtoken {self._access_token}"}

    def _can_refresh(self) -> bool:
        return all(
            self._credentials.get(k)
            for k in ("refresh_token", "client_id", "client_secret", "accounts_url")
        )

    def _refresh_access_token(self) -> None:
        """OAuth refresh-token grant (``accounts.zoho.<dc>/oauth/v2/token``)."""
        url = self._credentials["accounts_url"].rstrip("/") + "/oauth/v2/token"
        # In the form body, not the query string: URLs end up in logs.
        response = self._accounts.post(
            url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._credentials["refresh_token"],
                "client_id": self._credentials["client_id"],
                "client_secret": self._credentials["client_secret"],
            },
        )
        token = response.json().get("access_token") if response.is_success else None
        if not token:
            raise PortalAuthFailed(response.status_code, "oauth_refresh_failed", "no access token")
        self._access_token = token


def _has_next_page(body: dict[str, Any]) -> bool:
    info = body.get("page_info") or {}
    if isinstance(info, list):  # seen in the wild: a one-item array
        info = info[0] if info else {}
    value = info.get("has_next_page", info.get("has_more_page", False))
    return value is True or str(value).lower() == "true"


def _group_logs(group: dict[str, Any]) -> list[dict[str, Any]]:
    # V3 log_details; V2 tasklogs/buglogs/generallogs or task_logs/bug_logs/general_logs.
    if "log_details" in group:
        return list(group["log_details"] or [])
    logs: list[dict[str, Any]] = []
    for kind in ("task", "bug", "general"):
        for key in (f"{kind}logs", f"{kind}_logs"):
            for log_ in group.get(key) or []:
                logs.append({**log_, "module_detail": log_.get("module_detail") or {"type": kind}})
    return logs


def _with_date(log_: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    return log_ if log_.get("date") or log_.get("log_date") else {**log_, "date": group.get("date")}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from a V3 or V2 error body; the reason phrase otherwise."""
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return str(response.status_code), response.reason_phrase
    if "title" in error:
        details = error.get("details") or [{}]
        return str(error["title"]), str(details[0].get("message", ""))
    return str(error.get("code", response.status_code)), str(error.get("message", ""))
