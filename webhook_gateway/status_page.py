"""The status page at ``/``: server-rendered HTML for people.

Login with an API token opens a server-side session (``worker.accounts.status_sessions``):
the ``billsync_session`` cookie (HttpOnly, SameSite=Strict, Secure over https)
holds a random id, never the token, and ends at logout, after
``BILLSYNC_STATUS_SESSION_HOURS`` or when the token is revoked. Every POST must
come from this origin (Origin, else Referer) and carry the form's CSRF token: the
session's for the page's forms, a double-submit cookie's for the login form.
Per integration of the organization, newest first (deleted ones greyed): the
state badge, whether a running pull waits on the portal's request budget and how
long it has left, per-module last sync time (else the last webhook applied) and
counts, the open errors grouped by module and reason (every record on a paged
page of its own), and the last sync runs with their counts in words; then the
organization's dead letters, paged, with a filter, a details page per dead letter
(error, traceback, original body) and, for admins, replay and delete buttons.
Every time is shown one way, in UTC. Plain forms, no JavaScript, no inline style
(the Content-Security-Policy allows this origin only); narrow screens stack the
tables' cells (status.css).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, make_response, redirect, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from schemas import Module
from schemas.headers import TRACEBACK_HEADER
from schemas.responses import ModuleStatus
from webhook_gateway.services import services
from worker.accounts import (
    LoggedIn,
    Principal,
    authenticate,
    end_session,
    find_session,
    start_session,
)
from worker.db import DeadLetter, Integration, IntegrationState, SyncError, SyncRun
from worker.errors import BillsyncError, BrokerUnavailable
from worker.integrations import history, organization_integrations, status
from worker.messaging import DeadLetterFilter, count, delete_matching, find, replay
from worker.sync import ErrorPage, page_errors

__all__ = ["COOKIE", "CSRF_FIELD", "LOGIN_COOKIE", "blueprint", "count_lines", "utc_time"]

blueprint = Blueprint("status_page", __name__, template_folder="templates")

COOKIE = "billsync_session"
LOGIN_COOKIE = "billsync_login_csrf"  # the login form's double-submit CSRF token
CSRF_FIELD = "csrf_token"
TEMPLATES = Path(__file__).parent / "templates"
DEAD_LETTER_LIMIT = 50
ERROR_PAGE_LIMIT = 25
HISTORY_LIMIT = 10
BADGES: dict[str, str] = {
    IntegrationState.SYNC_IN_PROGRESS: "Sync in Progress",
    IntegrationState.ACTIVE: "Active",
    IntegrationState.DISABLED: "Disabled",
    IntegrationState.DELETED: "Deleted",
}
_DONE = re.compile(r"replayed (\d+)(?: of (\d+))?")
_DELETED = re.compile(r"deleted (\d+)")


@dataclass(frozen=True)
class ErrorGroup:
    """The open errors of one module and reason: one row, however many records."""

    module: str
    reason: str
    records: int
    occurrences: int
    message: str
    resolution: str
    last_seen: datetime


@dataclass(frozen=True)
class IntegrationPanel:
    integration: Integration
    status: str
    badge: str
    modules: dict[str, ModuleStatus]
    parked: int
    current_run: SyncRun | None
    throttled: bool
    expected_seconds_left: float | None
    error_groups: list[ErrorGroup]
    history: list[SyncRun]

    @property
    def open_errors(self) -> int:
        return sum(group.records for group in self.error_groups)


@dataclass(frozen=True)
class DeadLetterPanel:
    rows: list[DeadLetter]
    total: int
    module: str
    error_class: str
    next_url: str | None  # the next page, oldest first


# -- the page and the login -------------------------------------------------------------


@blueprint.get("/")
def index() -> Response:
    logged_in = _logged_in()
    if logged_in is None:
        return _login_form(None, 200)
    who = logged_in.principal
    module, error_class = _filter_args(request.args)
    with services().read() as session:
        integrations = _integrations(session, who)
        panels = [_panel(session, integration) for integration in integrations]
        dead = _dead_letters(session, integrations, module, error_class, _after(request.args))
        return _page(
            "status_page.html",
            logged_in,
            panels=panels,
            dead=dead,
            modules=[m.value for m in Module],
            notice=_notice(request.args.get("done", "")),
            failure=request.args.get("failed") == "broker",
            refresh_url=_here(module, error_class),
        )


@blueprint.get("/integrations/<integration_id>/errors")
def errors(integration_id: str) -> Response:
    """Every open error of one integration, a page at a time (the main page groups them)."""
    logged_in = _logged_in()
    if logged_in is None:
        return redirect("/", code=303)
    after = _after(request.args)
    with services().read() as session:
        integration = _own_integration(session, logged_in.principal, integration_id)
        page: ErrorPage = page_errors(
            session, integration.id, limit=ERROR_PAGE_LIMIT, after_id=after
        )
        next_url = (
            f"/integrations/{integration.id}/errors?after={page.next_after_id}"
            if page.next_after_id is not None
            else None
        )
        return _page(
            "status_errors.html",
            logged_in,
            integration=integration,
            page=page,
            total=sum(page.by_module.values()),
            first_page=after == 0,
            next_url=next_url,
        )


@blueprint.get("/dead-letters/<int:dead_letter_id>")
def dead_letter_details(dead_letter_id: int) -> Response:
    """One dead letter whole: its error, traceback and original body."""
    logged_in = _logged_in()
    if logged_in is None:
        return redirect("/", code=303)
    with services().read() as session:
        row = _own_dead_letter(session, logged_in.principal, dead_letter_id)
        return _page(
            "status_dead_letter.html",
            logged_in,
            row=row,
            body=_pretty(row.body),
            headers=json.dumps(_shown_headers(row.headers), indent=2, sort_keys=True),
        )


@blueprint.get("/status.css")
def stylesheet() -> Response:
    # A file, not an inline <style>: the Content-Security-Policy allows this origin only.
    response = make_response(_stylesheet())
    response.mimetype = "text/css"
    response.headers["Cache-Control"] = "max-age=3600"
    return response


@blueprint.post("/login")
def login() -> Response:
    _require_same_origin()
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not _equal(request.form.get(CSRF_FIELD, ""), expected):
        raise _Refused(_plain(403, "the login form expired: reload the page and log in again"))
    token = request.form.get("token", "").strip()
    with services().write() as session:
        who = authenticate(session, token) if token else None
        if who is None:
            session_id = None
        else:
            # A new id at every login (no fixation); the session it replaces ends.
            end_session(session, request.cookies.get(COOKIE, ""))
            session_id = start_session(session, who, _lifetime())
    if session_id is None:
        return _login_form("Unknown or revoked token.", 401)
    response = redirect("/", code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=int(_lifetime().total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/", httponly=True, samesite="Strict")
    return response


@blueprint.post("/logout")
def logout() -> Response:
    session_id = request.cookies.get(COOKIE, "")
    logged_in = _logged_in()
    if logged_in is not None:
        _require_form_of_this_session(logged_in)
        with services().write() as session:
            end_session(session, session_id)
    response = redirect("/", code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict")
    return response


# -- replay (admins) --------------------------------------------------------------------


@blueprint.post("/dead-letters/<int:dead_letter_id>/replay")
def replay_one(dead_letter_id: int) -> Response:
    who = _admin("replaying")
    with services().read() as session:
        row = _own_dead_letter(session, who, dead_letter_id)
        flt = DeadLetterFilter(integration_ids=frozenset({row.integration_id or ""}), ids=(row.id,))
    return _replay(flt, *_filter_args(request.form))


@blueprint.post("/dead-letters/<int:dead_letter_id>/delete")
def delete_one(dead_letter_id: int) -> Response:
    """Gone for good (its edit audit stays): for an event no replay can fix."""
    who = _admin("deleting")
    with services().write() as session:
        row = _own_dead_letter(session, who, dead_letter_id)
        scope = frozenset({row.integration_id or ""})
        deleted = delete_matching(session, DeadLetterFilter(integration_ids=scope, ids=(row.id,)))
    module, error_class = _filter_args(request.form)
    return redirect(_here(module, error_class, done=f"deleted {deleted}"), code=303)


@blueprint.post("/dead-letters/replay")
def replay_matching() -> Response:
    who = _admin("replaying")
    module, error_class = _filter_args(request.form)
    with services().read() as session:
        flt = _filter(_integrations(session, who), module, error_class)
    return _replay(flt, module, error_class)


def _replay(flt: DeadLetterFilter, module: str | None, error_class: str | None) -> Response:
    svc = services()
    try:
        result = replay(svc.sessions, svc.publisher, flt)
    except BrokerUnavailable:
        return redirect(_here(module, error_class, failed="broker"), code=303)
    done = f"replayed {result.replayed}"
    if result.replayed != result.matched:
        done += f" of {result.matched}"
    return redirect(_here(module, error_class, done=done), code=303)


# -- helpers ----------------------------------------------------------------------------


class _Refused(BillsyncError):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@blueprint.errorhandler(_Refused)
def _refused(exc: _Refused) -> Response:
    return exc.response


def _logged_in() -> LoggedIn | None:
    # A write: the lookup notes the token's last use (at most once a minute).
    with services().write() as session:
        return find_session(session, request.cookies.get(COOKIE, ""))


def _admin(doing: str) -> Principal:
    """The admin behind a replay or delete form: logged in (401), this origin and this
    session's form (403), an admin token (403)."""
    logged_in = _logged_in()
    if logged_in is None:
        raise _Refused(_plain(401, "log in at / first"))
    _require_form_of_this_session(logged_in)
    if not logged_in.principal.is_admin:
        raise _Refused(_plain(403, f"{doing} dead letters needs an admin token"))
    return logged_in.principal


def _own_dead_letter(session: Session, who: Principal, dead_letter_id: int) -> DeadLetter:
    """The dead letter, if it belongs to the organization (404 otherwise: no probing)."""
    ids = {i.id for i in _integrations(session, who)}
    row = session.get(DeadLetter, dead_letter_id)
    if row is None or row.integration_id not in ids:
        raise _Refused(_plain(404, f"no dead letter {dead_letter_id}"))
    return row


def _own_integration(session: Session, who: Principal, integration_id: str) -> Integration:
    for integration in _integrations(session, who):
        if integration.id == integration_id:
            return integration
    raise _Refused(_plain(404, "no such integration"))


def _require_form_of_this_session(logged_in: LoggedIn) -> None:
    """A cross-site request carrying the session cookie stops here (CSRF)."""
    _require_same_origin()
    if not _equal(request.form.get(CSRF_FIELD, ""), logged_in.csrf_token):
        raise _Refused(_plain(403, "missing or wrong CSRF token: reload the page and try again"))


def _require_same_origin() -> None:
    """The request's Origin (else its Referer) must be this site's."""
    source = request.headers.get("Origin") or request.headers.get("Referer") or ""
    if source and source != "null":
        netloc = urlsplit(source).netloc.lower()
        public = urlsplit(services().settings.public_url).netloc.lower()
        if netloc and netloc in {request.host.lower(), public}:
            return
    raise _Refused(_plain(403, "cross-origin request refused"))


def _equal(sent: str, expected: str) -> bool:
    return hmac.compare_digest(sent.encode(), expected.encode())


def _login_form(error: str | None, status: int) -> Response:
    """The login form, with its double-submit CSRF token (a cookie and a hidden field)."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = make_response(
        render_template("status_login.html", error=error, csrf_token=token), status
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure, path="/"
    )
    return _private(response)


def _page(template: str, logged_in: LoggedIn, **context: Any) -> Response:
    """A page of the logged-in organization, with its session's form token."""
    html = render_template(
        template, principal=logged_in.principal, csrf_token=logged_in.csrf_token, **context
    )
    return _private(make_response(html))


def _private(response: Response) -> Response:
    # The page shows the organization's data: no shared or back-button caches.
    response.headers["Cache-Control"] = "no-store"
    return response


@cache
def _stylesheet() -> str:
    return (TEMPLATES / "status.css").read_text()


def _lifetime() -> timedelta:
    return timedelta(hours=services().settings.status_session_hours)


def _plain(status: int, message: str) -> Response:
    response = make_response(message + "\n", status)
    response.mimetype = "text/plain"
    return response


def _integrations(session: Session, who: Principal) -> list[Integration]:
    return organization_integrations(session, who.organization_id)[::-1]  # newest first


def _panel(session: Session, integration: Integration) -> IntegrationPanel:
    report = status(session, integration)
    view = report.view()
    return IntegrationPanel(
        integration=integration,
        status=report.status,
        badge=BADGES.get(report.status, report.status),
        modules=report.modules,
        parked=report.parked,
        current_run=report.current_run,
        throttled=view.throttled,
        expected_seconds_left=view.expected_seconds_left,
        error_groups=_error_groups(session, integration.id),
        history=history(session, integration, HISTORY_LIMIT),
    )


def _error_groups(session: Session, integration_id: str) -> list[ErrorGroup]:
    """Open errors by module and reason, the most records first. A reason's message and
    resolution are the same for each of its records, so the group shows them once."""
    records = func.count()
    rows = session.execute(
        select(
            SyncError.module,
            SyncError.reason,
            records,
            func.sum(SyncError.count),
            func.max(SyncError.message),
            func.max(SyncError.resolution),
            func.max(SyncError.last_seen),
        )
        .where(SyncError.integration_id == integration_id, SyncError.resolved.is_(False))
        .group_by(SyncError.module, SyncError.reason)
        .order_by(records.desc(), SyncError.module, SyncError.reason)
    ).all()
    return [
        ErrorGroup(module, reason, int(n), int(total or 0), message, resolution, seen)
        for module, reason, n, total, message, resolution, seen in rows
    ]


def _dead_letters(
    session: Session,
    integrations: list[Integration],
    module: str | None,
    error_class: str | None,
    after: int,
) -> DeadLetterPanel:
    flt = _filter(integrations, module, error_class)
    rows = find(session, flt, limit=DEAD_LETTER_LIMIT + 1, after_id=after)
    more = len(rows) > DEAD_LETTER_LIMIT
    rows = rows[:DEAD_LETTER_LIMIT]
    return DeadLetterPanel(
        rows=rows,
        total=count(session, flt),
        module=module or "",
        error_class=error_class or "",
        next_url=_here(module, error_class, after=str(rows[-1].id)) + "#dead-letters"
        if more
        else None,
    )


def _after(values: Any) -> int:
    """The id a page starts after; anything but a small positive number starts at 0."""
    raw = str(values.get("after", ""))
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else 0


def _pretty(body: str) -> str:
    """The original body as indented JSON, or as it came when it is not JSON."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


def _shown_headers(headers: dict[str, Any]) -> dict[str, Any]:
    # The traceback has its own block on the page.
    return {k: v for k, v in (headers or {}).items() if k != TRACEBACK_HEADER}


def _filter(
    integrations: list[Integration], module: str | None, error_class: str | None
) -> DeadLetterFilter:
    return DeadLetterFilter(
        integration_ids=frozenset(i.id for i in integrations),
        module=module,
        error_class=error_class,
    )


def _filter_args(values: Any) -> tuple[str | None, str | None]:
    module = str(values.get("module", "")).strip() or None
    error_class = str(values.get("error_class", "")).strip() or None
    return module, error_class


def _here(module: str | None, error_class: str | None, **extra: str) -> str:
    query = {"module": module, "error_class": error_class, **extra}
    encoded = urlencode({k: v for k, v in query.items() if v})
    return f"/?{encoded}" if encoded else "/"


def _notice(done: str) -> str | None:
    """Only messages this page wrote: a crafted link cannot put text on the page."""
    deleted = _DELETED.fullmatch(done)
    if deleted is not None:
        n = deleted.group(1)
        return f"Deleted {n} dead letter{'' if n == '1' else 's'}."
    match = _DONE.fullmatch(done)
    if match is None:
        return None
    replayed, matched = match.groups()
    if matched is not None:
        return f"Replayed {replayed} of {matched} dead letters (the rest cannot be read)."
    return f"Replayed {replayed} dead letter{'' if replayed == '1' else 's'}."


# -- how values read on the page --------------------------------------------------------


@blueprint.app_template_filter("utc")
def utc_time(value: datetime | str | None) -> str:
    """Every time on the page one way, in UTC: ``2026-12-01 14:05 UTC``."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the database keeps UTC
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@blueprint.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """A time left for people: ``45 s``, ``12 min``, ``2 h 05 min``."""
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = round(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


@blueprint.app_template_filter("count_lines")
def count_lines(counts: dict[str, Any] | None) -> list[str]:
    """A sync run's counts in words, one line per module and one for the portal calls.

    In a fixed order: the database's JSON keeps keys in an order of its own."""
    lines = []
    for name in sorted(counts or {}, key=_module_order):
        figures = (counts or {})[name]
        if name == "portal" and isinstance(figures, dict):
            lines.append(f"portal: {_portal_figures(figures)}")
        elif isinstance(figures, dict):
            lines.append(f"{name}: {_module_figures(figures)}")
        else:
            lines.append(f"{name}: {_number(figures)}")
    return lines


_MODULES = [m.value for m in Module]
_FIGURES = ["read", "emitted", "invalid", "deleted"]


def _module_order(name: str) -> tuple[int, str]:
    # The portal's calls last, after the modules in the order a pull reads them.
    return (_MODULES.index(name) if name in _MODULES else len(_MODULES), name)


def _module_figures(figures: dict[str, Any]) -> str:
    # "4 read, 3 emitted, 1 invalid (owner.email × 1)": invalid_fields explains "invalid".
    fields = figures.get("invalid_fields") or {}
    keys = sorted(
        (k for k in figures if k != "invalid_fields"),
        key=lambda k: (_FIGURES.index(k) if k in _FIGURES else len(_FIGURES), k),
    )
    parts = []
    for key in keys:
        part = f"{_number(figures[key])} {key.replace('_', ' ')}"
        if key == "invalid" and fields:
            most_first = sorted(fields.items(), key=lambda item: (-item[1], item[0]))
            part += " (" + ", ".join(f"{f} × {_number(n)}" for f, n in most_first) + ")"
        parts.append(part)
    return ", ".join(parts)


def _portal_figures(figures: dict[str, Any]) -> str:
    parts = [f"{_number(figures.get('calls') or 0)} calls"]
    if figures.get("calls_left"):
        parts.append(f"about {_number(figures['calls_left'])} to go")
    if figures.get("throttled"):
        parts.append("throttled")
    if figures.get("seconds_left"):
        parts.append(f"about {duration(figures['seconds_left'])} left")
    return ", ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}"
