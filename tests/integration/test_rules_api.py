"""The sync rules seen through the API: signed webhooks in, state and error summary out."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Connected, Org
from tests.events import project, task, timesheet
from tests.integration.sync_harness import Sync
from tests.support import BrokerProbe, Recorder, running, send_signed, wait_until
from worker.cli.runtime import build_consumer
from worker.settings import Settings

pytestmark = pytest.mark.integration


def get(client: FlaskClient, org: Org, path: str) -> Any:
    response = client.get(path, headers=org.auth("viewer"))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_signed_webhooks_end_in_the_right_state_and_error_summary_and_heal(
    client: FlaskClient,
    org: Org,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, hooks=[recorder])):
        send_signed(
            client,
            integration,
            [
                task("T1"),
                project("P2", client=None),
                timesheet("L1", task_id="T1"),
                timesheet("L2", bill_status="Non Billable"),
            ],
        )
        wait_until(lambda: len(recorder.statuses()) == 4)
        errors = get(client, org, f"/api/v1/integrations/{integration.id}/errors")["items"]
        assert sorted((e["module"], e["reason"]) for e in errors) == [
            ("projects", "no_primary_customer"),
            ("tasks", "related_project_missing"),
            ("timesheets", "not_billable"),
            ("timesheets", "related_project_missing"),
        ]
        first = next(e for e in errors if e["module"] == "projects")
        assert first["resolution"] and first["message"] and first["count"] == 1

        send_signed(client, integration, [project("P1")])  # the missing project arrives
        wait_until(lambda: len(recorder.statuses()) == 5)

    assert [t["source_id"] for t in get(client, org, "/api/v1/tasks")["items"]] == ["T1"]
    assert [t["source_id"] for t in get(client, org, "/api/v1/timesheets")["items"]] == ["L1"]
    still_open = get(client, org, f"/api/v1/integrations/{integration.id}/errors")["by_module"]
    assert sorted(still_open) == ["projects", "timesheets"]
    resolved = get(client, org, f"/api/v1/integrations/{integration.id}/errors?status=resolved")
    assert {e["source_id"] for e in resolved["items"]} == {"T1", "L1"}


def test_the_error_summary_filters_by_module_and_reason(
    client: FlaskClient,
    org: Org,
    integration: Connected,
    pg_sessions: sessionmaker[Session],
) -> None:
    Sync(pg_sessions, org.id, integration.id).apply(
        task("T1"), timesheet("L1", bill_status="Non Billable"), timesheet("L2", pid="P9")
    )
    path = f"/api/v1/integrations/{integration.id}/errors"
    by_module = get(client, org, f"{path}?module=timesheets")
    assert [e["module"] for e in by_module["items"]] == ["timesheets", "timesheets"]
    by_reason = get(client, org, f"{path}?reason=related_project_missing")
    assert len(by_reason["items"]) == 2
    assert client.get(f"{path}?status=bogus", headers=org.auth()).status_code == 422


def test_a_custom_field_mapped_to_another_type_is_422_naming_the_pair(
    client: FlaskClient, org: Org
) -> None:
    mapping = {
        "source": "Budget",
        "source_type": "decimal",
        "target": "notes",
        "target_type": "text",
    }
    response = client.post(
        "/api/v1/integrations",
        json={"portal_id": "p", "field_map": {"projects": [mapping]}},
        headers=org.auth(),
    )
    assert response.status_code == 422
    message = response.get_json()["details"][0]["message"]
    assert "'Budget' (decimal)" in message and "'notes' (text)" in message


def test_restricted_project_creation_answers_403_naming_the_setting(
    client: FlaskClient, org: Org
) -> None:
    client.post(
        "/api/v1/integrations",
        json={"portal_id": "p", "restrict_project_creation": True},
        headers=org.auth(),
    )
    customer = client.post(
        "/api/v1/customers", json={"name": "Globex", "currency_code": "USD"}, headers=org.auth()
    ).get_json()
    response = client.post(
        "/api/v1/projects",
        json={"name": "Local", "customer_id": customer["id"]},
        headers=org.auth(),
    )
    assert response.status_code == 403
    assert "restrict_project_creation" in response.get_json()["message"]


def test_without_the_restriction_a_local_project_is_created(client: FlaskClient, org: Org) -> None:
    customer = client.post(
        "/api/v1/customers", json={"name": "Globex", "currency_code": "usd"}, headers=org.auth()
    ).get_json()
    assert customer["currency_code"] == "USD"
    response = client.post(
        "/api/v1/projects",
        json={"name": "Local", "customer_id": customer["id"]},
        headers=org.auth(),
    )
    assert response.status_code == 201
    created = response.get_json()
    assert (
        created["name"],
        created["customer_id"],
        created["standalone"],
        created["source_id"],
    ) == (
        "Local",
        customer["id"],
        True,
        None,
    )


def test_adding_an_organization_user_through_the_api_makes_their_staff_project_staff(
    client: FlaskClient,
    org: Org,
    integration: Connected,
    pg_sessions: sessionmaker[Session],
) -> None:
    Sync(pg_sessions, org.id, integration.id).apply(project(), timesheet("L1"))
    assert get(client, org, "/api/v1/staff")["items"][0]["kind"] == "inactive_timesheet_staff"
    added = client.post(
        "/api/v1/users", json={"name": "Asha", "email": "Asha@Example.com"}, headers=org.auth()
    )
    assert added.status_code == 201
    assert get(client, org, "/api/v1/users")["items"][0]["email"] == "asha@example.com"
    assert get(client, org, "/api/v1/staff")["items"][0]["kind"] == "project_staff"
    again = client.post(
        "/api/v1/users", json={"name": "Asha", "email": "asha@example.com"}, headers=org.auth()
    )
    assert again.status_code == 409


def test_staff_can_be_listed_per_project(
    client: FlaskClient,
    org: Org,
    integration: Connected,
    pg_sessions: sessionmaker[Session],
) -> None:
    Sync(pg_sessions, org.id, integration.id).apply(project("P1"), project("P2"), timesheet("L1"))
    projects = {p["source_id"]: p["id"] for p in get(client, org, "/api/v1/projects")["items"]}
    on_p1 = get(client, org, f"/api/v1/staff?project_id={projects['P1']}")["items"]
    on_p2 = get(client, org, f"/api/v1/staff?project_id={projects['P2']}")["items"]
    assert ([s["source_id"] for s in on_p1], on_p2) == (["U1"], [])
