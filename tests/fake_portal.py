"""A test double of the portal: the V3 REST API billsync pulls from, and the webhooks it pushes.

Records are kept in one store, in the webhook ``data`` shape of the contract, so
the push path and the pull path see the same portal and a test can check that they
agree. The REST side renders that store in the V3 spellings that ``worker.portal``
speaks (its docstring is the spec). The webhook side sends signed or token-carrying
envelopes the way the gateway verifies them. Faults are switched on by the test:
``fail_next`` for the API, and drops, duplicates and reordering for webhooks.

Run by hand for the README walkthrough: ``python -m tests.fake_portal serve --seed``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import random
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from typing import Any, TypeVar

import click
import httpx
from flask import Blueprint, Flask, Response, abort, jsonify, request
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from standardwebhooks.webhooks import Webhook
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from tests.events import Event, event
from tests.fake_portal_shapes import iso, log_type, render_legacy, render_v3

__all__ = ["FakePortal", "control_blueprint", "flask_deliver", "http_deliver"]

Deliver = Callable[[bytes, dict[str, str]], int]
T = TypeVar("T")

CHILDREN = ("milestones", "tasklists", "tasks", "bugs", "timesheets")
MODULES = ("users", "projects", *CHILDREN)
#: REST path segment under /projects/{id}/ -> module, in V3 and in the older API.
CHILD_PATHS = {
    "milestones": "milestones",
    "tasklists": "tasklists",
    "tasks": "tasks",
    "issues": "bugs",
    "timelogs": "timesheets",
}
LEGACY_CHILD_PATHS = {p: m for p, m in CHILD_PATHS.items() if p != "issues"} | {"bugs": "bugs"}
#: The key a list answers under.
LIST_KEYS = {m: m for m in MODULES} | {"bugs": "issues", "timesheets": "time_logs"}
LEGACY_LIST_KEYS = {m: m for m in MODULES} | {"timesheets": "timelogs"}
LOG_TYPES = ("task", "issue", "general")
TOKEN_HEADER = "X-Billsync-Token"
MAX_PER_PAGE = 200
MAX_WINDOW_DAYS = 183  # "6 months"


@dataclass
class _Row:
    modified: datetime
    data: dict[str, Any]


@dataclass
class _Hooks:
    deliver: Deliver
    secret: str | None
    token: str | None
    drop_rate: float
    duplicate_rate: float
    reorder: bool
    rng: random.Random
    queue: list[dict[str, Any]] = field(default_factory=list)


class FakePortal:
    """One portal: a record store, its V3 REST API (``app``) and its webhook sender.

    Safe to change from the test thread while ``serve()`` answers from server threads;
    webhooks are delivered outside the lock, so a receiver may call back into the API.
    """

    def __init__(
        self,
        portal_id: str = "portal-1",
        *,
        access_token: str = "fake-token",
        legacy: bool = False,
    ) -> None:
        self.portal_id = portal_id
        self.access_token = access_token
        self.legacy = legacy  # answer in the older spellings instead of V3's
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.delivered: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # HTTP status of each delivery, parallel to `delivered`
        self.dropped: list[dict[str, Any]] = []
        self._store: dict[str, dict[str, _Row]] = {m: {} for m in MODULES}
        # Children by project, rebuilt after a change: listings stay cheap on big portals.
        self._generation = 0
        self._by_project: dict[str, tuple[int, dict[str, list[_Row]]]] = {}
        self._lock = threading.RLock()
        self._last_stamp = datetime.min.replace(tzinfo=UTC)
        self._failures: list[tuple[int, int | None]] = []
        self._hooks: _Hooks | None = None
        self._ids = itertools.count(1)
        self.app = self._build_app()

    # -- data ---------------------------------------------------------------------

    def put(self, module: str, data: dict[str, Any]) -> dict[str, Any]:
        """Create or update (merging into the stored record); stamps a new modified_time."""
        return self._put(module, data, notify=True)

    def delete(self, module: str, record_id: str) -> None:
        """Remove a record; a project takes its children with it, silently, as the portal does.

        Raises KeyError when there is no such record.
        """
        with self._lock:
            row = self._table(module).pop(record_id, None)
            if row is None:
                raise KeyError(f"no {module} record {record_id}")
            self._generation += 1
            if module == "projects":
                for child in CHILDREN:
                    table = self._store[child]
                    for rid in [k for k, r in table.items() if r.data["project_id"] == record_id]:
                        del table[rid]
            data = {"id": record_id}
            if module in CHILDREN:
                data["project_id"] = row.data["project_id"]
            envelope = _envelope(module, "deleted", self._stamp(), data)
        self._emit(envelope)

    def records(self, module: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {rid: copy.deepcopy(r.data) for rid, r in self._table(module).items()}

    def modified_time(self, module: str, record_id: str) -> datetime:
        with self._lock:
            return self._table(module)[record_id].modified

    def seed(
        self,
        *,
        projects: int = 3,
        tasks_per_project: int = 4,
        logs_per_task: int = 3,
        users: int = 3,
        without_client: int = 1,
        send_webhooks: bool = False,
    ) -> None:
        """Fill the portal with a small, realistic and deterministic data set.

        Parents are stored before children, so with ``send_webhooks`` the receiver meets
        them in dependency order. Statuses cycle through every bill × approval pair so each
        project has a mix; the first project's general log is owned by a non-user.
        """
        rng = random.Random(0)
        today = datetime.now(UTC).date()

        def add(module: str, **fields: Any) -> dict[str, Any]:
            return self._put(module, {"id": self._new_id(), **fields}, notify=send_webhooks)

        def day(days_ago: int) -> str:
            return str(today - timedelta(days=days_ago))

        people = [
            _pick(add("users", name=name, email=email, role=role, active=True), *_PERSON)
            for name, email, role in itertools.islice(_PEOPLE, users)
        ]
        outsider = {"id": self._new_id(), "name": "Guest Reviewer", "email": "guest@example.org"}
        owners = people or [outsider]
        clients = [dict(zip(_CLIENT, (self._new_id(), *c), strict=True)) for c in _CLIENTS]
        statuses = itertools.cycle(
            itertools.product(("Billable", "Non Billable"), ("Approved", "Pending", "Rejected"))
        )
        for n in range(projects + without_client):
            client = clients[n % 2] if n < projects else None
            pid = add(
                "projects",
                name=f"{_PROJECTS[n % len(_PROJECTS)]} {n + 1}",
                status="active",
                currency_code=client["currency_code"] if client else "USD",
                billing_type=_BILLING_TYPES[n % len(_BILLING_TYPES)],
                rate="120.00",
                budget_value="25000.00",
                owner=owners[n % len(owners)],
                primary_client=client,
                custom_fields={"Cost center": f"CC-{100 + n}"},
            )["id"]
            milestones = [
                add(
                    "milestones",
                    project_id=pid,
                    name=f"Phase {m + 1}",
                    start_date=day(90 - 45 * m),
                    end_date=day(46 - 45 * m),
                    status="completed" if m == 0 else "notcompleted",
                )["id"]
                for m in range(rng.randint(1, 2))
            ]
            lists = [
                add(
                    "tasklists",
                    project_id=pid,
                    name=f"Sprint {k + 1}",
                    milestone_id=milestones[k] if k < len(milestones) else None,
                )
                for k in range(rng.randint(1, 2))
            ]
            tasks = []
            for t in range(tasks_per_project):
                tasklist = lists[t // 2 % len(lists)] if t % 2 == 0 else {}
                tasks.append(
                    add(
                        "tasks",
                        project_id=pid,
                        name=_TASKS[t % len(_TASKS)],
                        tasklist_id=tasklist.get("id"),
                        milestone_id=tasklist.get("milestone_id"),
                        status=rng.choice(("Open", "In Progress", "Closed")),
                        billing_type="Non Billable" if t % 3 == 2 else "Billable",
                        rate="95.00",
                        owners=[rng.choice(owners)],
                        custom_fields={},
                    )["id"]
                )
            bug = add(
                "bugs",
                project_id=pid,
                title="Checkout fails on Safari",
                status="Open",
                severity="Major",
                assignee=rng.choice(owners),
            )["id"]
            targets = [{"task_id": t} for t in tasks for _ in range(logs_per_task)]
            targets += [{"bug_id": bug}, {"name": "Weekly client call"}]
            for target in targets:
                bill, approval = next(statuses)
                general = "name" in target
                add(
                    "timesheets",
                    project_id=pid,
                    **target,
                    log_date=day(rng.randint(0, 59)),
                    minutes=rng.choice((15, 30, 45, 60, 90, 120, 150, 240)),
                    bill_status=bill,
                    approval_status=approval,
                    notes="Call notes" if general else "Implementation",
                    owner=outsider if general and n == 0 else rng.choice(owners),
                )

    def _put(self, module: str, data: dict[str, Any], *, notify: bool) -> dict[str, Any]:
        if "id" not in data:
            raise ValueError(f"{module} record needs an id")
        record = {**copy.deepcopy(data), "id": str(data["id"])}
        with self._lock:
            table = self._table(module)
            old = table.get(record["id"])
            merged = {**old.data, **record} if old else record
            if module in CHILDREN and not merged.get("project_id"):
                raise ValueError(f"{module} record needs a project_id")
            row = table[record["id"]] = _Row(self._stamp(), merged)
            self._generation += 1
            envelope = _envelope(module, "updated" if old else "created", row.modified, merged)
        if notify:
            self._emit(envelope)
        return copy.deepcopy(merged)

    def _table(self, module: str) -> dict[str, _Row]:
        if module not in self._store:
            raise ValueError(f"unknown module {module!r}; one of {', '.join(MODULES)}")
        return self._store[module]

    def _stamp(self) -> datetime:
        """UTC now in whole milliseconds, strictly after the previous stamp (the REST precision)."""
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        self._last_stamp = max(now, self._last_stamp + timedelta(milliseconds=1))
        return self._last_stamp

    def _new_id(self) -> str:
        return str(2447529000000100000 + next(self._ids))

    # -- webhooks -------------------------------------------------------------------

    def connect_webhooks(
        self,
        deliver: Deliver,
        *,
        secret: str | None = None,
        token: str | None = None,
        drop_rate: float = 0.0,
        duplicate_rate: float = 0.0,
        reorder: bool = False,
        seed: int = 0,
    ) -> None:
        """From now on every change is sent to ``deliver(body, headers)``.

        Signed with ``secret`` (Standard Webhooks) and/or carrying ``token``; neither
        sends it unauthenticated. Without ``reorder`` each change is delivered inside
        ``put``/``delete``; with it, at ``flush_webhooks()`` in a shuffled order.
        """
        self._hooks = _Hooks(
            deliver, secret, token, drop_rate, duplicate_rate, reorder, random.Random(seed)
        )

    def disconnect_webhooks(self) -> None:
        """Stop sending; what is still queued is discarded."""
        self._hooks = None

    def flush_webhooks(self) -> list[int]:
        """Deliver what is queued; returns the HTTP statuses, in delivery order."""
        hooks = self._hooks
        if hooks is None:
            return []
        pending, hooks.queue = hooks.queue, []
        if hooks.reorder:
            hooks.rng.shuffle(pending)
        return [self._send(hooks, envelope) for envelope in pending]

    def _emit(self, envelope: dict[str, Any]) -> None:
        hooks = self._hooks
        if hooks is None:
            return
        if hooks.rng.random() < hooks.drop_rate:
            self.dropped.append(envelope)
            return
        copies = 2 if hooks.rng.random() < hooks.duplicate_rate else 1
        hooks.queue.extend([envelope] * copies)
        if not hooks.reorder:
            self.flush_webhooks()

    def _send(self, hooks: _Hooks, envelope: dict[str, Any]) -> int:
        body = json.dumps(envelope)
        headers = {"Content-Type": "application/json"}
        if hooks.secret is not None:
            msg_id, now = envelope["event_id"], datetime.now(UTC)
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = Webhook(hooks.secret).sign(msg_id, now, body)
        if hooks.token is not None:
            headers[TOKEN_HEADER] = hooks.token
        status = hooks.deliver(body.encode(), headers)
        self.delivered.append(envelope)
        self.statuses.append(status)
        return status

    # -- REST API -------------------------------------------------------------------

    def fail_next(self, status: int, *, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` API requests answer ``status`` (a V3 error), before any check."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    @contextlib.contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve ``app`` over real HTTP on 127.0.0.1; yields the base URL."""
        server = make_server("127.0.0.1", port, self.app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join()
            server.server_close()

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        base = f"/api/v3/portal/{self.portal_id}"
        app.register_error_handler(HTTPException, lambda e: _error(e.code or 500, str(e)))
        app.register_error_handler(UnknownPath, lambda e: _unknown_path())

        @app.before_request
        def gate() -> ResponseReturnValue | None:
            if not request.path.startswith(("/api/", "/restapi/")):
                return None
            self.requests.append((request.method, request.path, request.args.to_dict()))
            with self._lock:
                failure = self._failures.pop(0) if self._failures else None
            if failure:
                status, retry_after = failure
                headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
                return _error(status, "injected by FakePortal.fail_next", headers)
            if request.headers.get("Authorization") != f"Zoho-oauthtoken {self.access_token}":
                return _error(401, "the OAuth access token is missing or invalid")
            return None

        @app.get(f"{base}/projects")
        def projects() -> ResponseReturnValue:
            rows = sorted(self._rows("projects"), key=lambda r: r.data["id"])
            if self.legacy:
                return self._list("projects", rows)
            # V3 answers a bare array without page_info; a short page is the last.
            items, _ = _paginate(rows)
            return jsonify([self._render("projects", r) for r in items])

        @app.get(f"{base}/users")
        def users() -> ResponseReturnValue:
            return self._list("users", self._rows("users"))

        @app.get(f"{base}/projects/<pid>")
        def project(pid: str) -> ResponseReturnValue:
            rendered = self._render("projects", self._row("projects", pid))
            return {"projects": [rendered]} if self.legacy else rendered

        @app.get(f"{base}/projects/<pid>/clients")
        def clients_v3(pid: str) -> ResponseReturnValue:
            if not self.legacy:
                raise UnknownPath  # not seen in V3: billsync falls back to V2's path
            return self._clients(pid)

        @app.get(f"/restapi/portal/{self.portal_id}/projects/<pid>/clients/")
        @app.get(f"/restapi/portal/{self.portal_id}/projects/<pid>/clients")
        def clients_v2(pid: str) -> ResponseReturnValue:
            return self._clients(pid)

        @app.get(f"{base}/projects/<pid>/<path>")
        def children(pid: str, path: str) -> ResponseReturnValue:
            module = self._module_of(path)
            self._row("projects", pid)
            if module == "timesheets":
                return self._timelogs(pid)
            return self._list(module, self._rows(module, pid))

        @app.get(f"{base}/projects/<pid>/<path>/<rid>")
        def child(pid: str, path: str, rid: str) -> ResponseReturnValue:
            if path == "logs":
                return self._log(pid, rid)
            module = self._module_of(path)
            if module == "timesheets":
                raise UnknownPath  # one log is /logs/{id}, not /timelogs/{id}
            row = self._row(module, rid)
            if row.data["project_id"] != pid:
                abort(404, f"no {path} record {rid} in project {pid}")
            return {LIST_KEYS[module]: [self._render(module, row)]}

        @app.route("/<path:anything>")
        def unknown(anything: str) -> ResponseReturnValue:
            raise UnknownPath

        return app

    def _module_of(self, path: str) -> str:
        """The module a child path names, in this portal's generation of the API."""
        paths = LEGACY_CHILD_PATHS if self.legacy else CHILD_PATHS
        if path not in paths:
            raise UnknownPath
        return paths[path]

    def _row(self, module: str, record_id: str) -> _Row:
        with self._lock:
            row = self._store[module].get(record_id)
            if row is None:
                abort(404, f"no {module} record {record_id}")
            return _Row(row.modified, copy.deepcopy(row.data))

    def _rows(
        self, module: str, project_id: str | None = None, *, since: datetime | None = None
    ) -> list[_Row]:
        """Copies, by modified_time then id, so pages are stable."""
        with self._lock:
            if project_id is None:
                candidates: Iterable[_Row] = self._store[module].values()
            else:
                candidates = self._project_index(module).get(project_id, [])
            rows = [
                _Row(r.modified, copy.deepcopy(r.data))
                for r in candidates
                if since is None or r.modified >= since
            ]
        return sorted(rows, key=lambda r: (r.modified, r.data["id"]))

    def _project_index(self, module: str) -> dict[str, list[_Row]]:
        cached = self._by_project.get(module)
        if cached is None or cached[0] != self._generation:
            index: dict[str, list[_Row]] = {}
            for row in self._store[module].values():
                index.setdefault(row.data["project_id"], []).append(row)
            cached = self._by_project[module] = (self._generation, index)
        return cached[1]

    def _list(self, module: str, rows: list[_Row]) -> ResponseReturnValue:
        items, page_info = _paginate(rows)
        key = LEGACY_LIST_KEYS[module] if self.legacy else LIST_KEYS[module]
        rendered = [self._render(module, r) for r in items]
        if module == "milestones" and not self.legacy:
            return {key: rendered, "page_info": [page_info]}  # V3: a one-item array
        return {key: rendered, "page_info": page_info}

    def _clients(self, project_id: str) -> ResponseReturnValue:
        """The project's client company (V2 shape: id and name; no currency)."""
        client = self._row("projects", project_id).data.get("primary_client")
        if not client:
            return {"clients": []}
        if self.legacy:
            return {"clients": [client]}
        return {"clients": [{"id": client["id"], "name": client["name"]}]}

    def _timelogs(self, project_id: str) -> ResponseReturnValue:
        """Logs of one type in the date window, paged by entry, each page grouped by day."""
        if request.args.get("view_type") != "customdate":
            abort(400, "view_type=customdate is required")
        start, end = _date_arg("start_date"), _date_arg("end_date")
        if end < start or (end - start).days > MAX_WINDOW_DAYS:
            abort(400, f"the date window must be 0 to {MAX_WINDOW_DAYS} days")
        wanted = None if self.legacy else _module_arg()
        by_modified = request.args.get("fetch_by_modified_time") == "true"
        rows = [
            r
            for r in self._rows("timesheets", project_id)
            if start <= (r.modified.date() if by_modified else _day(r.data["log_date"])) <= end
            and (wanted is None or log_type(r.data) == wanted)
        ]
        items, page_info = _paginate(rows)
        if not items:
            return Response(status=204)
        days: dict[str, list[dict[str, Any]]] = {}
        for row in items:
            days.setdefault(row.data["log_date"], []).append(self._render("timesheets", row))
        if self.legacy:
            groups = [{"date": _us(day), "tasklogs": logs} for day, logs in days.items()]
            return {"timelogs": {"date": groups}, "page_info": page_info}
        time_logs = [{"date": day, "log_details": logs} for day, logs in days.items()]
        return {"time_logs": time_logs, "page_info": page_info}

    def _log(self, project_id: str, log_id: str) -> ResponseReturnValue:
        """One time log, at /logs/{id}?type=task|issue|general."""
        kind = request.args.get("type")
        if kind not in LOG_TYPES:
            abort(400, "type (task, issue or general) is required")
        row = self._row("timesheets", log_id)
        if row.data["project_id"] != project_id or log_type(row.data) != kind:
            abort(404, f"no {kind} log {log_id} in project {project_id}")
        rendered = self._render("timesheets", row)
        return {"time_logs": [{"date": row.data["log_date"], "log_details": [rendered]}]}

    def _render(self, module: str, row: _Row) -> dict[str, Any]:
        render = render_legacy if self.legacy else render_v3
        return _without_none(render(module, row.data, row.modified, self._lookup))

    def _lookup(self, module: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._store[module].get(record_id)
            return copy.deepcopy(row.data) if row else None


# -- delivery adapters ----------------------------------------------------------------


def flask_deliver(client: FlaskClient, integration_id: str) -> Deliver:
    """Post webhooks to a gateway app in-process (its Flask test client)."""

    def deliver(body: bytes, headers: dict[str, str]) -> int:
        return client.post(f"/webhooks/{integration_id}", data=body, headers=headers).status_code

    return deliver


def http_deliver(url: str) -> Deliver:
    """Post webhooks to a gateway over HTTP, to the full webhook URL."""

    def deliver(body: bytes, headers: dict[str, str]) -> int:
        return httpx.post(url, content=body, headers=headers, timeout=10).status_code

    return deliver


# -- rendering and request helpers ----------------------------------------------------


def _envelope(module: str, action: str, at: datetime, data: dict[str, Any]) -> Event:
    return event(
        module,
        copy.deepcopy(data),
        action=action,
        at=iso(at),
        event_id=f"evt_{uuid.uuid4().hex}",
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A V3 error body; 401 is the portal's INVALID_OAUTHTOKEN."""
    if status == 401:
        title, kind = "INVALID_OAUTHTOKEN", "AUTHENTICATION"
    else:
        title = HTTPStatus(status).phrase.upper().replace(" ", "_")
        kind = "SERVER" if status >= 500 else "REQUEST"
    body = {
        "status_code": str(status),
        "title": title,
        "error_type": kind,
        "details": [{"message": message}],
    }
    response = jsonify({"error": body})
    response.status_code = status
    response.headers.update(headers or {})
    return response


class UnknownPath(Exception):
    """A path the portal's API does not have (V3 answers URL_RULE_NOT_CONFIGURED)."""


def _unknown_path() -> Response:
    body = {
        "status_code": "400",
        "instance": request.path,
        "title": "URL_RULE_NOT_CONFIGURED",
        "error_type": "FIELDS_VALIDATION_ERROR",
        "details": [{"message": "Given URL is wrong"}],
    }
    response = jsonify({"error": body})
    response.status_code = 400
    return response


def _module_arg() -> str:
    """The log type of a V3 time-log listing: ``module={"type": …}``, required."""
    raw = request.args.get("module")
    try:
        kind = json.loads(raw or "")["type"]
    except (ValueError, KeyError, TypeError):
        abort(400, 'module={"type": "task"|"issue"|"general"} is required')
    if kind not in LOG_TYPES:
        abort(400, f"module type must be one of {', '.join(LOG_TYPES)}")
    return str(kind)


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def _us(iso_date: str) -> str:
    year, month, day = iso_date.split("-")
    return f"{month}-{day}-{year}"


def _pick(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: data.get(key) for key in keys}


def _paginate(items: list[T]) -> tuple[list[T], dict[str, Any]]:
    page, per_page = _int_arg("page", 1), min(_int_arg("per_page", 100), MAX_PER_PAGE)
    first = (page - 1) * per_page
    page_info = {"page": page, "per_page": per_page, "has_next_page": len(items) > first + per_page}
    return items[first : first + per_page], page_info


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        abort(400, f"{name} must be a positive integer")
    return int(raw)


def _date_arg(name: str) -> date:
    raw = request.args.get(name)
    try:
        return _day(raw or "")
    except ValueError:
        abort(400, f"{name} (YYYY-MM-DD) is required")


def _day(text: str) -> date:
    return date.fromisoformat(text)


_PERSON = ("id", "name", "email")
_CLIENT = ("id", "name", "email", "currency_code", "crm_id")
_CLIENTS = [
    ("Globex", "ap@globex.example.com", "USD", "crm-1001"),
    ("Initech", "billing@initech.example.com", "EUR", None),
]
_PEOPLE = [
    ("Asha Rao", "asha@example.com", "admin"),
    ("Bruno Diaz", "bruno@example.com", "manager"),
    ("Chen Wei", "chen@example.com", "employee"),
    ("Dana Okafor", "dana@example.com", "contractor"),
    ("Emil Novak", "emil@example.com", "employee"),
]
_PROJECTS = ["Website redesign", "Mobile app", "Data migration", "Support retainer"]
_BILLING_TYPES = [
    "based_on_task_hours",
    "based_on_project_hours",
    "based_on_staff_hours",
    "fixed_cost_for_project",
]
_TASKS = ["Design review", "API integration", "QA pass", "Deployment", "Documentation"]


# -- manual runs ------------------------------------------------------------------------


def control_blueprint(portal: FakePortal) -> Blueprint:
    """Unauthenticated endpoints that drive the fake from outside (curl, the README)."""
    bp = Blueprint("fake_control", __name__, url_prefix="/_fake")
    bp.register_error_handler(KeyError, lambda e: _error(404, str(e.args[0])))
    bp.register_error_handler(ValueError, lambda e: _error(400, str(e)))

    @bp.get("/records/<module>")
    def list_records(module: str) -> ResponseReturnValue:
        return portal.records(module)

    @bp.post("/records/<module>")
    def put_record(module: str) -> ResponseReturnValue:
        return portal.put(module, request.get_json(force=True))

    @bp.delete("/records/<module>/<record_id>")
    def delete_record(module: str, record_id: str) -> ResponseReturnValue:
        portal.delete(module, record_id)
        return Response(status=204)

    @bp.post("/webhooks")
    def webhooks() -> ResponseReturnValue:
        body = request.get_json(force=True)
        portal.connect_webhooks(
            http_deliver(body["url"]), secret=body.get("secret"), token=body.get("token")
        )
        return Response(status=204)

    return bp


@click.group()
def main() -> None:
    """A fake portal (V3 REST API + webhooks) for trying billsync by hand."""


@main.command()
@click.option("--port", default=8090, show_default=True)
@click.option("--seed", "seeded", is_flag=True, help="Start with a realistic data set.")
@click.option("--projects", default=3, show_default=True, help="Projects --seed makes.")
@click.option("--tasks-per-project", default=4, show_default=True)
@click.option("--logs-per-task", default=3, show_default=True)
@click.option("--portal-id", default="portal-1", show_default=True)
@click.option("--access-token", default="fake-token", show_default=True)
def serve(
    port: int,
    seeded: bool,
    projects: int,
    tasks_per_project: int,
    logs_per_task: int,
    portal_id: str,
    access_token: str,
) -> None:
    """Serve the API and the /_fake control endpoints until interrupted."""
    portal = FakePortal(portal_id, access_token=access_token)
    portal.app.register_blueprint(control_blueprint(portal))
    if seeded:
        portal.seed(
            projects=projects, tasks_per_project=tasks_per_project, logs_per_task=logs_per_task
        )
    with portal.serve(port) as url:
        click.echo(f"base URL:     {url}")
        click.echo(f"portal id:    {portal.portal_id}")
        click.echo(f"access token: {portal.access_token}", nl=True)
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
