"""The read API: bearer tokens, roles, organization isolation, pagination and filters."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org, make_org
from tests.events import (
    Event,
    bug,
    deleted,
    message,
    milestone,
    project,
    task,
    tasklist,
    timesheet,
    user,
)
from worker.sync.apply import apply_batch

pytestmark = pytest.mark.integration

RESOURCES = [
    "projects",
    "milestones",
    "tasklists",
    "tasks",
    "bugs",
    "timesheets",
    "customers",
    "staff",
]
CREATED = "created"


def portal_events() -> list[Event]:
    """One record of every module, under project P1."""
    return [
        project("P1", action=CREATED),
        milestone("M1", name="Beta", action=CREATED),
        tasklist("L1", name="Design", milestone_id="M1", action=CREATED),
        task("T1", name="Wireframes", tasklist_id="L1", action=CREATED),
        bug("B1", title="Logo blurry", action=CREATED),
        user("U1", name="Asha Rao", action=CREATED),
        *[
            timesheet(f"TS-{day}", task_id="T1", log_date=f"2026-10-{day}", action=CREATED)
            for day in ("30", "31")
        ],
        timesheet("TS-nov", task_id="T1", log_date="2026-11-02", minutes=90, action=CREATED),
    ]


def connect(client: FlaskClient, org: Org, **fields: Any) -> str:
    body = {"portal_id": f"portal-{org.id[:8]}", "modules": ["timesheets"], **fields}
    response = client.post("/api/v1/integrations", json=body, headers=org.auth())
    assert response.status_code == 201, response.get_json()
    integration_id: str = response.get_json()["id"]
    return integration_id


def seed(sessions: sessionmaker[Session], integration_id: str, events: list[Event]) -> None:
    with sessions.begin() as session:
        apply_batch(session, [message(event, integration_id) for event in events])


@pytest.fixture
def seeded(client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]) -> Org:
    """Org A with one record of every module (timesheets before 1 Nov are invoiced)."""
    integration_id = connect(client, org, invoiced_before="2026-11-01")
    seed(pg_sessions, integration_id, portal_events())
    return org


@pytest.fixture
def other_org(pg_sessions: sessionmaker[Session]) -> Org:
    return make_org(pg_sessions, "Other Co")


def items(client: FlaskClient, path: str, org: Org) -> list[dict[str, Any]]:
    response = client.get(path, headers=org.auth("viewer"))
    assert response.status_code == 200, response.get_json()
    found: list[dict[str, Any]] = response.get_json()["items"]
    return found


# -- isolation --------------------------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_an_organization_sees_its_own_records(
    client: FlaskClient, seeded: Org, resource: str
) -> None:
    listed = items(client, f"/api/v1/{resource}", seeded)
    assert listed
    assert all({"id", "source_id"} <= set(record) for record in listed)
    detail = client.get(f"/api/v1/{resource}/{listed[0]['id']}", headers=seeded.auth("viewer"))
    assert detail.get_json() == listed[0]


@pytest.mark.parametrize("resource", RESOURCES)
def test_another_organization_sees_none_of_them_and_gets_404_not_403(
    client: FlaskClient, seeded: Org, other_org: Org, resource: str
) -> None:
    record_id = items(client, f"/api/v1/{resource}", seeded)[0]["id"]
    assert items(client, f"/api/v1/{resource}", other_org) == []
    response = client.get(f"/api/v1/{resource}/{record_id}", headers=other_org.auth())
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_another_organizations_integration_is_404(
    client: FlaskClient, org: Org, other_org: Org
) -> None:
    integration_id = connect(client, org)
    response = client.get(f"/api/v1/integrations/{integration_id}", headers=other_org.auth())
    assert response.status_code == 404


# -- tokens and roles -------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Token abc"}, {"Authorization": "Bearer bst_unknown"}],
    ids=["missing", "not-bearer", "unknown"],
)
def test_a_request_without_a_valid_token_is_401(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/projects", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_a_viewer_cannot_write(client: FlaskClient, org: Org) -> None:
    response = client.post(
        "/api/v1/integrations", json={"portal_id": "p"}, headers=org.auth("viewer")
    )
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"


def test_an_organization_connects_one_portal_at_a_time(client: FlaskClient, org: Org) -> None:
    connect(client, org)
    response = client.post("/api/v1/integrations", json={"portal_id": "p2"}, headers=org.auth())
    assert response.status_code == 409
    assert response.get_json()["error"] == "portal_already_connected"


def test_an_integration_request_with_unknown_fields_is_422(client: FlaskClient, org: Org) -> None:
    response = client.post(
        "/api/v1/integrations", json={"portal_id": "p", "colour": "red"}, headers=org.auth()
    )
    assert response.status_code == 422
    assert response.get_json()["details"][0]["path"] == "colour"


# -- pagination and filters ---------------------------------------------------------------


def test_pages_follow_next_cursor_to_the_end_without_repeats(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    seed(
        pg_sessions,
        connect(client, org),
        [project(f"P{n}", action=CREATED) for n in range(7)],
    )
    seen: list[int] = []
    sizes: list[int] = []
    cursor = ""
    while True:
        page = client.get(
            f"/api/v1/projects?limit=3&cursor={cursor}", headers=org.auth()
        ).get_json()
        sizes.append(len(page["items"]))
        seen += [p["id"] for p in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert sizes == [3, 3, 1]
    assert len(set(seen)) == 7


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "cursor=bogus"])
def test_a_bad_limit_or_cursor_is_422(client: FlaskClient, org: Org, query: str) -> None:
    response = client.get(f"/api/v1/projects?{query}", headers=org.auth())
    assert response.status_code == 422


def test_timesheets_filter_by_billing_status(client: FlaskClient, seeded: Org) -> None:
    invoiced = items(client, "/api/v1/timesheets?billing_status=invoiced", seeded)
    unbilled = items(client, "/api/v1/timesheets?billing_status=unbilled", seeded)
    assert sorted(t["source_id"] for t in invoiced) == ["TS-30", "TS-31"]
    assert [t["source_id"] for t in unbilled] == ["TS-nov"]


def test_timesheets_filter_by_project_and_show_their_links(
    client: FlaskClient, seeded: Org
) -> None:
    project_id = items(client, "/api/v1/projects", seeded)[0]["id"]
    task_id = items(client, "/api/v1/tasks", seeded)[0]["id"]
    sheets = items(client, f"/api/v1/timesheets?project_id={project_id}", seeded)
    assert len(sheets) == 3
    assert {(t["project_id"], t["task_id"], t["minutes"] > 0) for t in sheets} == {
        (project_id, task_id, True)
    }
    assert items(client, f"/api/v1/timesheets?project_id={project_id + 999}", seeded) == []


def test_a_non_numeric_id_filter_is_422(client: FlaskClient, seeded: Org) -> None:
    response = client.get("/api/v1/timesheets?project_id=abc", headers=seeded.auth())
    assert response.status_code == 422


def test_a_billing_status_that_is_none_of_the_statuses_is_422_naming_them(
    client: FlaskClient, org: Org
) -> None:
    response = client.get("/api/v1/timesheets?billing_status=foo", headers=org.auth())
    assert response.status_code == 422
    assert response.get_json()["message"] == (
        "billing_status must be one of unbilled, invoiced, got 'foo'"
    )


def test_a_deleted_record_is_neither_listed_nor_found(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    integration_id = connect(client, org)
    seed(pg_sessions, integration_id, [project("P1", action=CREATED)])
    project_id = items(client, "/api/v1/projects", org)[0]["id"]
    seed(
        pg_sessions,
        integration_id,
        [deleted("projects", "P1", at="2026-11-24T11:00:00Z")],
    )
    assert items(client, "/api/v1/projects", org) == []
    assert client.get(f"/api/v1/projects/{project_id}", headers=org.auth()).status_code == 404


def test_rates_and_budgets_read_fixed_point_in_the_currencys_minor_units(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    integration_id = connect(client, org)
    priced = [
        project("P1", action=CREATED, rate="120", budget_value="1.5E+3", currency_code="USD"),
        task("T1", name="Build", rate="80.125", action=CREATED),
    ]
    seed(pg_sessions, integration_id, priced)

    [read_project] = items(client, "/api/v1/projects", org)
    [read_task] = items(client, "/api/v1/tasks", org)

    assert (read_project["rate"], read_project["budget_value"]) == ("120.00", "1500.00")
    assert read_task["rate"] == "80.125"
