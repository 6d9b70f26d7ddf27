"""Pull sync and the integration lifecycle, against a fake portal, RabbitMQ and PostgreSQL."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org, make_org
from tests.fake_portal import FakePortal, flask_deliver
from tests.fake_portal_shapes import log_type
from tests.integration.pull_harness import (
    Pulling,
    counts,
    expected_state,
    in_process_clients,
    timelog_requests,
)
from tests.support import wait_until
from worker.cli.logs import JsonFormatter
from worker.db import Project, SyncRun
from worker.messaging.publisher import Publisher
from worker.portal.budget import RateBudget
from worker.pull.runner import PullRunner
from worker.pull.scheduler import SyncScheduler
from worker.settings import Settings


@pytest.fixture
def pulling(
    portal: FakePortal,
    client: FlaskClient,
    org: Org,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    settings: Settings,
    worker: None,
) -> Pulling:
    runner = PullRunner(
        pg_sessions, publisher, settings, client_factory=in_process_clients(portal, settings)
    )
    return Pulling(portal, client, org, pg_sessions, runner)


@pytest.fixture
def synced(pulling: Pulling) -> Pulling:
    """Connected and through its initial sync."""
    pulling.connect()
    assert pulling.run_pending() == "succeeded"
    return pulling


def change_portal(portal: FakePortal) -> None:
    """Update, add and delete records of several modules."""
    projects = [p for p in portal.records("projects").values() if p.get("primary_client")]
    first, second, third = projects[0], projects[1], projects[2]
    portal.put("projects", {**first, "name": "Renamed in the portal"})
    task = next(t for t in portal.records("tasks").values() if t["project_id"] == first["id"])
    portal.put("tasks", {**task, "name": "Renamed task"})
    portal.put("tasks", {"id": "T-new", "project_id": first["id"], "name": "Brand new task"})
    log = next(
        t
        for t in portal.records("timesheets").values()
        if t["project_id"] == first["id"]
        and t["approval_status"] == "Approved"
        and t["bill_status"] == "Billable"
    )
    portal.put("timesheets", {**log, "minutes": log["minutes"] + 45})
    portal.put(
        "timesheets",
        {**log, "id": "L-new", "task_id": "T-new", "bug_id": None, "minutes": 30},
    )
    doomed = next(
        t for t in portal.records("timesheets").values() if t["project_id"] == second["id"]
    )
    portal.delete("timesheets", doomed["id"])
    bug = next(b for b in portal.records("bugs").values() if b["project_id"] == second["id"])
    portal.delete("bugs", bug["id"])
    portal.delete("projects", third["id"])


def test_initial_sync_reaches_the_portals_state_and_goes_active(pulling: Pulling) -> None:
    created = pulling.connect()
    assert created["status"] == "sync_in_progress"

    assert pulling.run_pending() == "succeeded"

    expected = expected_state(pulling.portal)
    assert pulling.state() == expected
    status = pulling.api("GET", "/status").get_json()
    assert status["status"] == "active"
    assert {m: status["modules"][m]["synced"] for m in expected} == counts(expected)
    assert all(status["modules"][m]["last_sync_time"] for m in expected)


def test_a_portal_answering_in_the_older_spellings_syncs_the_same(
    pulling: Pulling, publisher: Publisher, settings: Settings
) -> None:
    legacy = FakePortal(legacy=True)
    legacy.seed(projects=3, tasks_per_project=3, logs_per_task=2, users=3, without_client=1)
    pulling.portal = legacy
    pulling.runner = PullRunner(
        pulling.sessions, publisher, settings, client_factory=in_process_clients(legacy, settings)
    )
    pulling.connect()

    assert pulling.run_pending() == "succeeded"

    assert pulling.state() == expected_state(legacy)
    (run,) = pulling.api("GET", "/history").get_json()["items"]
    assert all(figures.get("invalid", 0) == 0 for figures in run["counts"].values())


def test_history_counts_what_the_initial_sync_read_from_the_portal(synced: Pulling) -> None:
    (run,) = synced.api("GET", "/history").get_json()["items"]

    assert (run["kind"], run["outcome"]) == ("initial", "succeeded")
    assert run["started_at"] <= run["finished_at"]
    portal = synced.portal
    assert run["counts"]["projects"]["read"] == len(portal.records("projects"))
    assert run["counts"]["users"]["read"] == len(portal.records("users"))
    with_client = {i for i, p in portal.records("projects").items() if p.get("primary_client")}
    tasks = [t for t in portal.records("tasks").values() if t["project_id"] in with_client]
    assert run["counts"]["tasks"]["read"] == len(tasks)
    assert "name" in run["mapped_fields"]["standard"]["projects"]


def test_nothing_is_applied_while_disabled_and_enable_resumes_to_the_portals_state(
    synced: Pulling,
) -> None:
    before = synced.state()
    assert synced.api("POST", "/disable").get_json()["status"] == "disabled"
    synced.portal.connect_webhooks(
        flask_deliver(synced.client, synced.integration_id), secret=synced.webhook_secret
    )

    change_portal(synced.portal)

    assert set(synced.portal.statuses) == {202}
    wait_until(lambda: synced.api("GET", "/status").get_json()["parked_events"] > 0)
    assert synced.state() == before
    synced.portal.requests.clear()
    response = synced.api("POST", "/enable", json={"portal_id": synced.portal.portal_id})
    assert response.status_code == 202
    assert synced.run_pending() == "succeeded"

    synced.wait_for_state(expected_state(synced.portal))
    assert synced.api("GET", "/status").get_json()["parked_events"] == 0
    resumed_from = [q for q in timelog_requests(synced.portal) if q.get("fetch_by_modified_time")]
    assert resumed_from, "the resume read time logs changed since the watermark"


def test_instant_sync_repairs_randomly_dropped_webhooks(synced: Pulling) -> None:
    synced.portal.connect_webhooks(
        flask_deliver(synced.client, synced.integration_id),
        secret=synced.webhook_secret,
        drop_rate=0.6,
        seed=7,
    )
    change_portal(synced.portal)
    assert synced.portal.dropped

    response = synced.api("POST", "/sync")
    assert response.status_code == 202
    assert synced.run_pending() == "succeeded"

    synced.wait_for_state(expected_state(synced.portal))


def test_a_time_log_deleted_in_the_portal_is_deleted_by_the_next_sync(synced: Pulling) -> None:
    # Given a synced log deleted in the portal while its webhook was lost
    synced_logs = synced.state()["timesheets"]
    log = next(t for t in synced.portal.records("timesheets").values() if t["id"] in synced_logs)
    synced.portal.delete("timesheets", log["id"])
    synced.portal.requests.clear()

    # When an instant sync runs
    synced.api("POST", "/sync")
    assert synced.run_pending() == "succeeded"

    # Then the deletion was confirmed at /logs/{id} with the log's type, and applied
    asked = [q for _, path, q in synced.portal.requests if path.endswith(f"/logs/{log['id']}")]
    assert asked == [{"type": log_type(log)}]
    synced.wait_for_state(expected_state(synced.portal))
    (latest, *_) = synced.api("GET", "/history").get_json()["items"]
    assert latest["counts"]["timesheets"]["deleted"] == 1


def test_reordered_and_duplicated_webhooks_reach_the_portals_state(synced: Pulling) -> None:
    synced.portal.connect_webhooks(
        flask_deliver(synced.client, synced.integration_id),
        secret=synced.webhook_secret,
        duplicate_rate=0.5,
        reorder=True,
        seed=3,
    )
    change_portal(synced.portal)

    assert set(synced.portal.flush_webhooks()) == {202}

    synced.wait_for_state(expected_state(synced.portal))


def test_a_second_instant_sync_request_returns_the_open_run(synced: Pulling) -> None:
    first = synced.api("POST", "/sync").get_json()
    second = synced.api("POST", "/sync").get_json()

    assert first["id"] == second["id"]
    assert synced.api("GET", "/status").get_json()["status"] == "sync_in_progress"


def test_enable_with_another_portal_is_refused(synced: Pulling) -> None:
    synced.api("POST", "/disable")

    response = synced.api("POST", "/enable", json={"portal_id": "another-portal"})

    assert response.status_code == 409
    assert "another-portal" in response.get_json()["message"]
    assert synced.api("GET", "/status").get_json()["status"] == "disabled"


def test_a_second_portal_cannot_be_connected_while_one_is(synced: Pulling) -> None:
    response = synced.client.post(
        "/api/v1/integrations", json={"portal_id": "portal-2"}, headers=synced.org.auth()
    )

    assert response.status_code == 409


def test_delete_keeps_projects_standalone_and_frees_the_org_for_another_portal(
    synced: Pulling, publisher: Publisher, settings: Settings
) -> None:
    response = synced.api("DELETE", "")
    assert response.status_code == 200
    assert response.get_json()["standalone_projects"] == len(synced.state()["projects"])
    with synced.sessions() as session:
        projects = session.scalars(
            select(Project).where(Project.integration_id == synced.integration_id)
        ).all()
    assert projects and all(p.standalone and not p.deleted for p in projects)

    late = synced.client.post(
        f"/webhooks/{synced.integration_id}", json={}, headers={"webhook-id": "x"}
    )
    assert late.status_code == 409
    assert synced.api("POST", "/sync").status_code == 410

    other = FakePortal("portal-2")
    other.seed(projects=1, tasks_per_project=1, logs_per_task=1, without_client=0)
    synced.portal = other
    synced.runner = PullRunner(
        synced.sessions, publisher, settings, client_factory=in_process_clients(other, settings)
    )
    synced.connect()
    assert synced.run_pending() == "succeeded"
    assert synced.state() == expected_state(other)


def test_a_viewer_reads_status_and_history_but_cannot_sync(synced: Pulling) -> None:
    viewer = synced.org.auth("viewer")
    base = f"/api/v1/integrations/{synced.integration_id}"

    assert synced.client.get(f"{base}/status", headers=viewer).status_code == 200
    assert synced.client.get(f"{base}/history", headers=viewer).status_code == 200
    assert synced.client.post(f"{base}/sync", headers=viewer).status_code == 403


def test_another_organization_cannot_see_the_integration(
    synced: Pulling, pg_sessions: sessionmaker[Session]
) -> None:
    other = make_org(pg_sessions, "Other")
    base = f"/api/v1/integrations/{synced.integration_id}"

    assert synced.client.get(f"{base}/status", headers=other.auth()).status_code == 404
    assert synced.client.post(f"{base}/disable", headers=other.auth()).status_code == 404


def test_patch_changes_the_duplication_preference(synced: Pulling) -> None:
    response = synced.api("PATCH", "", json={"customer_duplication": "clone"})

    assert response.status_code == 200
    assert response.get_json()["customer_duplication"] == "clone"


def test_patch_refuses_a_field_map_between_types(synced: Pulling) -> None:
    field_map = {
        "projects": [
            {"source": "Budget", "source_type": "number", "target": "PO", "target_type": "text"}
        ]
    }

    response = synced.api("PATCH", "", json={"field_map": field_map})

    assert response.status_code == 422
    assert "Budget" in str(response.get_json()["details"])


def test_a_portal_failure_fails_the_run_and_leaves_webhooks_flowing(pulling: Pulling) -> None:
    pulling.connect()
    pulling.portal.fail_next(401, count=1)

    assert pulling.run_pending() == "failed"

    (run,) = pulling.api("GET", "/history").get_json()["items"]
    assert "PortalAuthFailed" in run["error"]
    assert pulling.api("GET", "/status").get_json()["status"] == "active"


def test_reconciliation_closes_gaps_left_by_lost_webhooks(
    synced: Pulling, settings: Settings
) -> None:
    synced.portal.connect_webhooks(
        flask_deliver(synced.client, synced.integration_id),
        secret=synced.webhook_secret,
        drop_rate=1.0,
    )
    change_portal(synced.portal)
    hourly = settings.model_copy(update={"reconcile_interval_seconds": 3600})
    now = [0.0]
    scheduler = SyncScheduler(synced.runner, synced.sessions, hourly, clock=lambda: now[0])

    now[0] += 3600  # an hour later, by the scheduler's clock
    scheduler.tick()

    synced.wait_for_state(expected_state(synced.portal))
    runs = synced.api("GET", "/history").get_json()["items"]
    assert [(r["kind"], r["outcome"]) for r in runs] == [
        ("reconciliation", "succeeded"),
        ("initial", "succeeded"),
    ]


def test_progress_is_visible_in_the_run_while_it_runs(
    pulling: Pulling, publisher: Publisher, settings: Settings
) -> None:
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def record(run_id: int, counts: dict[str, dict[str, int]]) -> None:
        with pulling.sessions() as session:
            run = session.get(SyncRun, run_id)
            assert run is not None
            seen.append((copy.deepcopy(counts), dict(run.counts)))

    pulling.runner = PullRunner(
        pulling.sessions,
        publisher,
        settings,
        client_factory=in_process_clients(pulling.portal, settings),
        on_progress=record,
    )
    pulling.connect()
    pulling.run_pending()

    assert len(seen) > 5
    assert all(reported == stored for reported, stored in seen)
    read = [sum(m.get("read", 0) for m in counts.values()) for counts, _ in seen]
    assert read == sorted(read) and read[0] < read[-1]


def test_a_pull_paced_by_the_request_budget_shows_throttled_and_the_time_left(
    pulling: Pulling, publisher: Publisher, settings: Settings
) -> None:
    # Given a budget of 5 calls a minute, on a clock the pull's waits move forward
    now = [0.0]
    budget = RateBudget(5, 60, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    statuses: list[dict[str, Any]] = []
    pulling.runner = PullRunner(
        pulling.sessions,
        publisher,
        settings,
        client_factory=in_process_clients(pulling.portal, settings, budget),
        on_progress=lambda _run, _counts: statuses.append(pulling.api("GET", "/status").get_json()),
    )

    # When the initial sync runs
    pulling.connect()
    assert pulling.run_pending() == "succeeded"

    # Then the status said it was throttled, with the time its calls still take
    throttled = [s for s in statuses if s["throttled"]]
    assert throttled, "the budget held the pull back"
    left = [s["expected_seconds_left"] for s in throttled if s["expected_seconds_left"] is not None]
    assert left[0] > left[-1] >= 0
    # and the portal never saw more calls than the budget allows
    assert len(pulling.portal.requests) <= 5 + now[0] * 5 / 60
    (run,) = pulling.api("GET", "/history").get_json()["items"]
    assert run["counts"]["portal"]["calls"] == len(pulling.portal.requests)
    assert pulling.api("GET", "/status").get_json()["throttled"] is False


def test_issue_logs_are_not_asked_for_where_a_project_has_no_issues(pulling: Pulling) -> None:
    # Given a project whose only issue was deleted in the portal
    bug = next(iter(pulling.portal.records("bugs").values()))
    pulling.portal.delete("bugs", bug["id"])
    pulling.connect()

    assert pulling.run_pending() == "succeeded"

    # Then its time logs were read for tasks and general logs only, and all synced
    asked = [
        json.loads(query["module"])["type"]
        for query in timelog_requests(pulling.portal)
        if f"/projects/{bug['project_id']}/" in query.get("_path", "")
    ]
    assert asked and "issue" not in asked and {"task", "general"} <= set(asked)
    pulling.wait_for_state(expected_state(pulling.portal))


def test_a_portal_record_outside_the_contract_is_counted_and_skipped(pulling: Pulling) -> None:
    log = next(iter(pulling.portal.records("timesheets").values()))
    pulling.portal.put("timesheets", {**log, "owner": {"id": "U9", "name": "No Email"}})
    pulling.connect()

    assert pulling.run_pending() == "succeeded"

    (run,) = pulling.api("GET", "/history").get_json()["items"]
    assert run["counts"]["timesheets"]["invalid"] == 1
    assert run["counts"]["timesheets"]["invalid_fields"] == {"owner.email": 1}
    assert log["id"] not in pulling.state()["timesheets"]


def test_no_log_line_carries_the_portal_credentials_or_the_webhook_secret(
    pulling: Pulling, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pulling.connect()
    pulling.portal.fail_next(503, count=2, retry_after=0)  # retries log their requests
    pulling.run_pending()
    pulling.portal.connect_webhooks(
        flask_deliver(pulling.client, pulling.integration_id), secret=pulling.webhook_secret
    )
    change_portal(pulling.portal)

    logged = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "retrying" in logged
    assert pulling.portal.access_token not in logged
    assert pulling.webhook_secret.removeprefix("whsec_") not in logged
