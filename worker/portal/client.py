"""An HTTP client of Zoho Projects' V3 REST API (the shapes and their sources are in
``worker.portal``'s docstring).

It pages (bare arrays and wrapped lists alike), paces itself with the portal's
request budget, retries what is worth retrying (429 and 5xx, honouring
``Retry-After``, and connection errors) with capped exponential back-off, gets a
new access token once after a 401, and never logs or raises with a credential in
the text.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any

import httpx

from worker.portal.auth import AccessToken
from worker.portal.budget import RateBudget
from worker.portal.errors import PortalAuthFailed, PortalError, PortalUnavailable

__all__ = [
    "LOG_TYPES",
    "PortalAuthFailed",
    "PortalClient",
    "PortalError",
    "PortalUnavailable",
]

log = logging.getLogger(__name__)

RETRYABLE = {429, 500, 502, 503, 504}
GONE = {404, 410}
# The V3 error title for a path the API does not have (seen as 400 and as 404).
UNKNOWN_PATH = "URL_RULE_NOT_CONFIGURED"
# Time logs are listed one log type at a time (the ``module`` parameter is required).
LOG_TYPES = ("task", "issue", "general")
# Keys a list may answer under, by path (the first is V3's).
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "projects": ("projects",),
    "users": ("users",),
    "clients": ("clients", "client_companies"),
    "milestones": ("milestones", "phases"),
    "phases": ("phases", "milestones"),
    "tasklists": ("tasklists",),
    "tasks": ("tasks",),
    "issues": ("issues", "bugs"),
    "bugs": ("bugs", "issues"),
    "timelogs": ("time_logs", "timelogs"),
}


class PortalClient:
    """One portal, one set of credentials. Use as a context manager or call close()."""

    def __init__(
        self,
        base_url: str,
        portal_id: str,
        token: AccessToken,
        *,
        transport: httpx.BaseTransport | None = None,
        budget: RateBudget | None = None,
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
        # V2's base, for the one list V3 was not seen to have (project clients).
        self._v2_base = f"{base_url.rstrip('/')}/restapi/portal/{portal_id}"
        self._clients_base = ""  # relative: the V3 base
        self._token = token
        self.budget = budget
        self.per_page = per_page
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._sleep = sleep
        # Paths the portal answered URL_RULE_NOT_CONFIGURED to: their fallbacks are used.
        self._unknown_paths: set[str] = set()
        self.calls = 0

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- lists ---------------------------------------------------------------------

    def projects(self) -> Iterator[list[dict[str, Any]]]:
        """Pages of every project (V3 has no changed-since filter: callers filter)."""
        return self.listing(("projects",))

    def listing(self, paths: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """Pages of every record listed at ``/{path}``: the first of ``paths`` (a path
        and the older names to fall back on) that the portal knows."""
        return self._listed("", paths)

    def project_clients(self, project_id: str) -> list[dict[str, Any]]:
        """The project's client companies; the first is its primary client.

        V2 documents ``/projects/{id}/clients/``; no V3 way was found, so the V3 path
        is asked first and, where the portal does not know it, the V2 one.
        """
        while True:
            path = f"{self._clients_base}/projects/{project_id}/clients"
            try:
                # One page: a project has a handful of clients, and V2 does not page so.
                return _items(self._get(path, {}), LIST_KEYS["clients"])
            except PortalError as exc:
                if exc.code != UNKNOWN_PATH or self._clients_base == self._v2_base:
                    raise
                log.info("portal has no V3 project clients; using the V2 path")
                self._clients_base = self._v2_base

    def users(self) -> Iterator[list[dict[str, Any]]]:
        return self.listing(("users",))

    def children(self, paths: Sequence[str], project_id: str) -> Iterator[list[dict[str, Any]]]:
        """Pages of every record of one project listed at ``/projects/{id}/{path}`` (a
        milestone, task list, task or issue): the first of ``paths`` the portal knows
        (V3 "issues" were V2 "bugs")."""
        return self._listed(f"/projects/{project_id}", paths)

    def _listed(self, prefix: str, paths: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        while True:
            path = self._path(paths)
            try:
                yield from self._pages(f"{prefix}/{path}", path, {})
                return
            except PortalError as exc:
                if exc.code != UNKNOWN_PATH or path == paths[-1]:
                    raise
                # Only the first page can fail this way: nothing was yielded yet.
                self._unknown_paths.add(path)
                log.info("portal has no /%s; using /%s", path, self._path(paths))

    def _path(self, paths: Sequence[str]) -> str:
        """The first of ``paths`` not known to be unknown to the portal (else the last)."""
        return next((p for p in paths[:-1] if p not in self._unknown_paths), paths[-1])

    def timelogs(
        self,
        project_id: str,
        start: date,
        end: date,
        *,
        by_modified_time: bool,
        log_types: Sequence[str] = LOG_TYPES,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of one project's time logs in a window of at most six months.

        Read once per log type (task, issue, general: ``log_types``). By modification date with
        ``by_modified_time``, else by log date. Day groups are flattened: each log
        carries its own ``date`` and, when the portal left it out, the type it was
        listed under as ``module_detail.type``.
        """
        for log_type in log_types:
            params: dict[str, Any] = {
                "module": json.dumps({"type": log_type}),
                "view_type": "customdate",
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
            }
            if by_modified_time:
                params["fetch_by_modified_time"] = "true"
            for groups in self._pages(f"/projects/{project_id}/timelogs", "timelogs", params):
                yield [
                    _with_type(_with_date(entry, group), log_type)
                    for group in _day_groups(groups)
                    for entry in _group_logs(group)
                ]

    def exists(self, paths: Sequence[str], record_id: str, project_id: str | None = None) -> bool:
        """Whether the record is still in the portal (404 or 410: it was deleted).

        Read at ``/{path}/{record_id}``, or under ``/projects/{project_id}`` for a
        record of a project, with the path its listing answered at.
        """
        prefix = "" if project_id is None else f"/projects/{project_id}"
        return self._found(f"{prefix}/{self._path(paths)}/{record_id}", {})

    def log_exists(self, project_id: str, log_id: str, log_type: str | None = None) -> bool:
        """Whether the time log is still in the portal: one log is read at
        ``/projects/{id}/logs/{log_id}?type=<log type>`` (not under /timelogs)."""
        return self._found(f"/projects/{project_id}/logs/{log_id}", {"type": log_type or "general"})

    def _found(self, path: str, params: dict[str, Any]) -> bool:
        try:
            self._get(path, params)
        except PortalError as exc:
            if exc.status in GONE:
                return False
            raise
        return True

    # -- transport -----------------------------------------------------------------

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a list; the answer is a bare array or ``{key: [...], page_info}``.

        The last page is the one ``page_info`` says has no next page or, without
        ``page_info`` (bare arrays), the first one shorter than ``per_page``.
        """
        page = 1
        while True:
            body = self._get(path, {**params, "page": page, "per_page": self.per_page})
            items = _items(body, LIST_KEYS.get(key, (key,)))
            if items:
                yield items
            if not items or not _has_next_page(body, len(items), self.per_page):
                return
            page += 1

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        """GET with retries; the decoded JSON, or None for 204 No Content."""
        renewed = False
        attempt = 0
        while True:
            if self.budget is not None:
                self.budget.acquire()
            try:
                self.calls += 1
                response = self._http.get(path, params=params, headers=self._auth_header())
            except httpx.TransportError as exc:
                attempt = self._wait_before_retry(attempt, path, type(exc).__name__, None)
                continue
            if response.status_code == 401 and not renewed and self._token.renew():
                renewed = True
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
                return response.json()
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
        return {"Authorization": f"Zoho-oauthtoken {self._token.current()}"}


def _items(body: Any, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    if isinstance(body, list):  # V3 projects: a bare array
        return body
    if not isinstance(body, dict):
        return []
    for key in keys:
        value = body.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and isinstance(value.get("date"), list):
            return [value]  # V2 time logs: {"timelogs": {"date": [day groups]}}
    return []


def _has_next_page(body: Any, count: int, per_page: int) -> bool:
    info = body.get("page_info") if isinstance(body, dict) else None
    if isinstance(info, list):  # milestones/phases: a one-item array
        info = info[0] if info else None
    if not isinstance(info, dict):
        return count >= per_page
    value = info.get("has_next_page", info.get("has_more_page", False))
    return value is True or str(value).lower() == "true"


def _day_groups(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """V3 day groups as they come; V2's ``{"date": [groups]}`` wrapper unwrapped."""
    groups: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item.get("date"), list):
            groups.extend(item["date"])
        else:
            groups.append(item)
    return groups


def _group_logs(group: dict[str, Any]) -> list[dict[str, Any]]:
    # V3 log_details; V2 tasklogs/buglogs/generallogs or task_logs/bug_logs/general_logs.
    if "log_details" in group:
        return list(group["log_details"] or [])
    logs: list[dict[str, Any]] = []
    for kind, v3_kind in (("task", "task"), ("bug", "issue"), ("general", "general")):
        for key in (f"{kind}logs", f"{kind}_logs"):
            for log_ in group.get(key) or []:
                logs.append(_with_type(log_, v3_kind))
    return logs


def _with_date(log_: dict[str, Any], group: dict[str, Any]) -> dict[str, Any]:
    return log_ if log_.get("date") or log_.get("log_date") else {**log_, "date": group.get("date")}


def _with_type(log_: dict[str, Any], log_type: str) -> dict[str, Any]:
    detail = log_.get("module_detail")
    if isinstance(detail, dict) and detail.get("type"):
        return log_
    return {**log_, "module_detail": {**(detail or {}), "type": log_type}}


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from a V3 or V2 error body; the reason phrase otherwise."""
    try:
        body = response.json()
    except ValueError:
        return str(response.status_code), response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return str(response.status_code), response.reason_phrase
    if "title" in error:
        details = error.get("details") or [{}]
        return str(error["title"]), str(details[0].get("message", ""))
    return str(error.get("code", response.status_code)), str(error.get("message", ""))
