"""The status page at ``/``: server-rendered HTML for people.

Login with an API token opens a server-side session (``worker.status_sessions``):
the ``billsync_session`` cookie (HttpOnly, SameSite=Strict, Secure over https)
holds a random id, never the token, and ends at logout, after
``BILLSYNC_STATUS_SESSION_HOURS`` or when the token is revoked. Every POST must
come from this origin (Origin, else Referer) and carry the form's CSRF token: the
session's for the page's forms, a double-submit cookie's for the login form.
Per integration of the organization, newest first (deleted ones greyed): the
state badge, per-module last sync time and counts, the open error summary with
resolutions and the last sync runs; then the organization's dead letters, with a
filter and, for admins, replay buttons. Plain forms, no JavaScript, no inline
style (the Content-Security-Policy allows this origin only).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, make_response, redirect, render_template, request
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from schemas import Module
from webhook_gateway.services import services
from worker import lifecycle
from worker.accounts import Principal, authenticate
from worker.db import DeadLetter, Integration, SyncError, SyncRun
from worker.dead_letters import DeadLetterFilter, count, find, replay
from worker.error_summary import list_errors
from worker.errors import BrokerUnavailable
from worker.integrations import organization_integrations
from worker.status_sessions import LoggedIn, end_session, find_session, start_session

__all__ = ["COOKIE", "CSRF_FIELD", "LOGIN_COOKIE", "blueprint"]

blueprint = Blueprint("status_page", __name__, template_folder="templates")

COOKIE = "billsync_session"
LOGIN_COOKIE = "billsync_login_csrf"  # the login form's double-submit CSRF token
CSRF_FIELD = "csrf_token"
TEMPLATES = Path(__file__).parent / "templates"
DEAD_LETTER_LIMIT = 50
HISTORY_LIMIT = 10
BADGES = {
    "sync_in_progress": "Sync in Progress",
    "active": "Active",
    "disabled": "Disabled",
    "deleted": "Deleted",
}
_DONE = re.compile(r"replayed (\d+)(?: of (\d+))?")


@dataclass(frozen=True)
class IntegrationPanel:
    integration: Integration
    status: str
    badge: str
    modules: dict[str, dict[str, Any]]
    parked: int
    current_run: SyncRun | None
    errors: list[SyncError]
    history: list[SyncRun]


@dataclass(frozen=True)
class DeadLetterPanel:
    rows: list[DeadLetter]
    total: int
    module: str
    error_class: str


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
        flt = _filter(integrations, module, error_class)
        dead = DeadLetterPanel(
            rows=find(session, flt, limit=DEAD_LETTER_LIMIT),
            total=count(session, flt),
            module=module or "",
            error_class=error_class or "",
        )
        html = render_template(
            "status_page.html",
            principal=who,
            csrf_token=logged_in.csrf_token,
            panels=panels,
            dead=dead,
            modules=[m.value for m in Module],
            notice=_notice(request.args.get("done", "")),
            failure=request.args.get("failed") == "broker",
            refresh_url=_here(module, error_class),
        )
    return _private(make_response(html))


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
    who = _admin()
    with services().read() as session:
        ids = frozenset(i.id for i in _integrations(session, who))
        row = session.get(DeadLetter, dead_letter_id)
        if row is None or row.integration_id not in ids:
            return _plain(404, f"no dead letter {dead_letter_id}")
    flt = DeadLetterFilter(integration_ids=ids, ids=(dead_letter_id,))
    return _replay(flt, *_filter_args(request.form))


@blueprint.post("/dead-letters/replay")
def replay_matching() -> Response:
    who = _admin()
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


class _Refused(Exception):
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


def _admin() -> Principal:
    """The admin behind a replay form: logged in (401), this origin and this session's
    form (403), an admin token (403)."""
    logged_in = _logged_in()
    if logged_in is None:
        raise _Refused(_plain(401, "log in at / first"))
    _require_form_of_this_session(logged_in)
    if not logged_in.principal.is_admin:
        raise _Refused(_plain(403, "replaying dead letters needs an admin token"))
    return logged_in.principal


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
    report = lifecycle.status(session, integration)
    return IntegrationPanel(
        integration=integration,
        status=report.status,
        badge=BADGES.get(report.status, report.status),
        modules=report.modules,
        parked=report.parked,
        current_run=report.current_run,
        errors=list_errors(session, integration.id, module=None, reason=None, resolved=False),
        history=lifecycle.history(session, integration, HISTORY_LIMIT),
    )


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
    match = _DONE.fullmatch(done)
    if match is None:
        return None
    replayed, matched = match.groups()
    if matched is not None:
        return f"Replayed {replayed} of {matched} dead letters (the rest cannot be read)."
    return f"Replayed {replayed} dead letter{'' if replayed == '1' else 's'}."
