"""The status page at ``/``: server-rendered HTML for people (DESIGN §7).

Token login: the API token goes into the ``billsync_token`` cookie (HttpOnly,
SameSite=Strict, so no other site can post the replay forms with it). Per
integration of the organization, newest first (deleted ones greyed): the state
badge, per-module last sync time and counts, the open error summary with
resolutions and the last sync runs; then the organization's dead letters, with a
filter and, for admins, replay buttons. Plain forms, no JavaScript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

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

__all__ = ["COOKIE", "blueprint"]

blueprint = Blueprint("status_page", __name__, template_folder="templates")

COOKIE = "billsync_token"
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


# -- login ------------------------------------------------------------------------------


@blueprint.get("/")
def index() -> Response | str:
    who = _logged_in()
    if who is None:
        return render_template("status_login.html", error=None)
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
        return render_template(
            "status_page.html",
            principal=who,
            panels=panels,
            dead=dead,
            modules=[m.value for m in Module],
            notice=_notice(request.args.get("done", "")),
            failure=request.args.get("failed") == "broker",
            refresh_url=_here(module, error_class),
        )


@blueprint.post("/login")
def login() -> Response | tuple[str, int]:
    token = request.form.get("token", "").strip()
    with services().read() as session:
        who = authenticate(session, token) if token else None
    if who is None:
        return render_template("status_login.html", error="Unknown or revoked token."), 401
    response = redirect("/", code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.is_secure,
        path="/",
    )
    return response


@blueprint.post("/logout")
def logout() -> Response:
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


def _logged_in() -> Principal | None:
    token = request.cookies.get(COOKIE, "").strip()
    if not token:
        return None
    with services().read() as session:
        return authenticate(session, token)


def _admin() -> Principal:
    who = _logged_in()
    if who is None:
        raise _Refused(_plain(401, "log in at / first"))
    if not who.is_admin:
        raise _Refused(_plain(403, "replaying dead letters needs an admin token"))
    return who


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
