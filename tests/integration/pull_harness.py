"""What the pull-sync tests share: a fake portal, a running worker, and state comparison.

``expected_state`` applies the sync rules to the fake portal's records by hand
(projects need a primary client; children need a synced project; time logs must
be billable and approved, under a synced task or bug), so a test can say "the
database equals the portal" in one assertion.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org
from tests.fake_portal import FakePortal
from tests.support import wait_until
from worker.db import Bug, Milestone, Project, Task, Tasklist, Timesheet
from worker.portal.auth import StaticToken
from worker.portal.budget import RateBudget
from worker.portal.client import PortalClient
from worker.pull.runner import PullRunner
from worker.settings import Settings

PORTAL_URL = "http://portal.test"
LABELS = {
    "projects": (Project, lambda r: r["name"]),
    "milestones": (Milestone, lambda r: r["name"]),
    "tasklists": (Tasklist, lambda r: r["name"]),
    "tasks": (Task, lambda r: r["name"]),
    "bugs": (Bug, lambda r: r["title"]),
    "timesheets": (Timesheet, lambda r: r["minutes"]),
}
State = dict[str, dict[str, Any]]


def in_process_clients(
    portal: FakePortal, settings: Settings, budget: RateBudget | None = None
) -> Any:
    """A client factory that reaches the fake portal's WSGI app without sockets."""

    def factory(portal_id: str, source: dict[str, Any]) -> PortalClient:
        return PortalClient(
            source["base_url"],
            portal_id,
            StaticToken(source["credentials"]["access_token"]),
            transport=httpx.WSGITransport(app=portal.app),
            budget=budget,
            per_page=settings.pull_per_page,
            sleep=lambda _s: None,
        )

    return factory


@dataclass
class Pulling:
    """One organization connected to one fake portal, with a runner for its pulls."""

    portal: FakePortal
    client: FlaskClient
    org: Org
    sessions: sessionmaker[Session]
    runner: PullRunner
    integration_id: str = ""
    webhook_secret: str = ""

    def connect(self, **fields: Any) -> dict[str, Any]:
        body = {
            "portal_id": self.portal.portal_id,
            "modules": ["timesheets"],
            "source": {
                "base_url": PORTAL_URL,
                "credentials": {"access_token": self.portal.access_token},
            },
            **fields,
        }
        response = self.client.post("/api/v1/integrations", json=body, headers=self.org.auth())
        assert response.status_code == 201, response.get_json()
        created: dict[str, Any] = response.get_json()
        self.integration_id = created["id"]
        self.webhook_secret = created.get("webhook_secret", "")
        return created

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"/api/v1/integrations/{self.integration_id}{path}"
        return self.client.open(url, method=method, headers=self.org.auth(), **kwargs)

    def run_pending(self) -> str:
        """What the worker's scheduler does: run the pending sync to its end."""
        result = self.runner.run_next()
        assert result is not None, "no pending sync run"
        return result[1]

    def state(self) -> State:
        """Live synced records of the integration: {module: {source id: label}}."""
        found: State = {}
        with self.sessions() as session:
            for module, (model, _label) in LABELS.items():
                table: Any = model
                column = (
                    table.minutes
                    if module == "timesheets"
                    else (table.title if module == "bugs" else table.name)
                )
                rows = session.execute(
                    select(table.source_id, column).where(
                        table.integration_id == self.integration_id, table.deleted.is_(False)
                    )
                )
                found[module] = {row[0]: row[1] for row in rows}
        return found

    def wait_for_state(self, expected: State, timeout: float = 20.0) -> None:
        wait_until(lambda: self.state() == expected, timeout=timeout)


def expected_state(portal: FakePortal) -> State:
    """The portal's records that the sync rules let through, labelled like ``state``."""
    projects = {i: r for i, r in portal.records("projects").items() if r.get("primary_client")}
    state: State = {"projects": {i: r["name"] for i, r in projects.items()}}
    for module in ("milestones", "tasklists", "tasks", "bugs"):
        label = LABELS[module][1]
        state[module] = {
            i: label(r) for i, r in portal.records(module).items() if r["project_id"] in projects
        }
    state["timesheets"] = {
        i: r["minutes"]
        for i, r in portal.records("timesheets").items()
        if r["project_id"] in projects
        and r["bill_status"] == "Billable"
        and r["approval_status"] == "Approved"
        and (not r.get("task_id") or r["task_id"] in state["tasks"])
        and (not r.get("bug_id") or r["bug_id"] in state["bugs"])
    }
    return state


def counts(state: State) -> dict[str, int]:
    return {module: len(records) for module, records in state.items()}


def timelog_requests(portal: FakePortal) -> Iterator[dict[str, str]]:
    """Query strings of the time-log listings the portal served (the path as ``_path``)."""
    for method, path, query in portal.requests:
        if method == "GET" and path.endswith("/timelogs"):
            yield {**query, "_path": path}
