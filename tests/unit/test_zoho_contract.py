"""The portal client and the record conversion on recorded Zoho Projects V3 answers.

Each answer in tests/fixtures/zoho/ is served for the request that produces it (its
README says where each shape comes from); the tests check what billsync reads from
it and that every converted record fits the webhook contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import Module, event_adapter
from worker.portal.auth import StaticToken
from worker.portal.client import PortalClient
from worker.portal.converters import modified_at, pull_event, to_event_data
from worker.sync import spec_for

RECORDED = Path(__file__).parent.parent / "fixtures" / "zoho"
PORTAL = "60012345678"
V3 = f"/api/v3/portal/{PORTAL}"
V2 = f"/restapi/portal/{PORTAL}"
PROJECT = "1817452000006072671"  # the recorded project with children
QUIET = "1817452000006083268"  # a project without time logs
LOG = "1817452000006090001"


def _answer(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=json.loads((RECORDED / f"{name}.json").read_text()))


def recorded_portal(request: httpx.Request) -> httpx.Response:
    """Route a request to its recorded answer, as the V3 API would answer it."""
    path, params = request.url.path, request.url.params
    if path == f"{V3}/projects":
        return _answer(f"projects_page{params['page']}")
    if path.startswith(f"{V3}/projects/") and path.endswith("/clients"):
        return _answer("error_url_rule_not_configured", 400)
    if path == f"{V2}/projects/{PROJECT}/clients":
        return _answer("project_clients")
    if path.startswith(f"{V2}/projects/"):
        return httpx.Response(204)
    if path == f"{V3}/users":
        return _answer("users")
    if path == f"{V3}/projects/{PROJECT}/tasks":
        return _answer(f"tasks_page{params['page']}")
    if path in (f"{V3}/projects/{PROJECT}/{m}" for m in ("milestones", "tasklists", "issues")):
        return _answer(path.rsplit("/", 1)[1])
    if path == f"{V3}/projects/{PROJECT}/timelogs":
        return _answer(f"timelogs_{json.loads(params['module'])['type']}")
    if path.endswith("/timelogs"):
        return httpx.Response(204)
    if path == f"{V3}/projects/{PROJECT}/logs/{LOG}" and params.get("type") == "task":
        return _answer("timelog_single")
    return httpx.Response(404, json={"error": {"status_code": "404", "title": "NOT_FOUND"}})


@pytest.fixture
def client() -> Iterator[PortalClient]:
    with PortalClient(
        "https://projectsapi.zoho.eu",
        PORTAL,
        StaticToken("1000.recorded"),
        transport=httpx.MockTransport(recorded_portal),
        per_page=2,
    ) as portal_client:
        yield portal_client


def _events(module: str, records: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
    """Convert and validate like the pull does; the event data of each record."""
    events = []
    for record in records:
        version = modified_at(record) or datetime(2026, 12, 1, tzinfo=UTC)
        data = to_event_data(spec_for(Module(module)).converter, record, **extra)
        event = event_adapter.validate_python(pull_event(module, data, version))
        events.append(event.model_dump(mode="json")["data"])
    return events


def _all(pages: Iterator[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [record for page in pages for record in page]


# -- projects and their clients -------------------------------------------------------


def test_projects_come_as_bare_arrays_until_a_short_page(client: PortalClient) -> None:
    pages = list(client.projects())
    assert [len(page) for page in pages] == [2, 1]


def test_a_v3_project_converts_with_its_currency_status_and_owner(client: PortalClient) -> None:
    first, archived, _ = _all(client.projects())
    [data] = _events("projects", [first], clients=[])
    assert data["id"] == PROJECT and data["name"] == "CEO Project"
    assert (data["status"], data["currency_code"]) == ("active", "USD")
    assert data["owner"] == {
        "id": "1817452000001766029",
        "name": "Priyanka Prabu",
        "email": "priyanka.prabu@example.com",
    }
    assert data["billing_type"] is None and data["rate"] is None
    assert _events("projects", [archived], clients=[])[0]["status"] == "archived"


def test_the_primary_client_comes_from_the_v2_clients_path_in_the_project_currency(
    client: PortalClient,
) -> None:
    clients = client.project_clients(PROJECT)
    first = _all(client.projects())[0]
    [data] = _events("projects", [first], clients=clients)
    assert data["primary_client"] == {
        "id": "1817452000000361001",
        "name": "Globex Corporation",
        "email": "ap@globex.example.com",
        "currency_code": "USD",
        "crm_id": None,
    }
    assert client.project_clients(QUIET) == []


def test_a_project_version_is_its_modified_time() -> None:
    first = json.loads((RECORDED / "projects_page1.json").read_text())[0]
    assert modified_at(first) == datetime(2026, 3, 30, 7, 58, 19, 896000, tzinfo=UTC)


# -- users, milestones, task lists --------------------------------------------------------


def test_users_take_zpuid_full_name_role_and_active(client: PortalClient) -> None:
    admin, former = _events("users", _all(client.users()))
    assert admin == {
        "id": "1817452000001766029",
        "name": "Priyanka Prabu",
        "email": "priyanka.prabu@example.com",
        "role": "admin",
        "active": True,
    }
    assert (former["role"], former["active"]) == ("employee", False)


def test_milestones_with_numeric_ids_and_a_page_info_array(client: PortalClient) -> None:
    pages = list(client.children(spec_for(Module.MILESTONES).paths, PROJECT))
    events = _events("milestones", _all(iter(pages)), project_id=PROJECT)
    assert len(pages) == 1
    assert [(m["id"], m["status"]) for m in events] == [
        ("1817452000006072801", "completed"),
        ("1817452000006072805", "notcompleted"),
    ]
    assert events[0]["start_date"] == "2026-03-30"


def test_tasklists_take_their_milestone_from_the_milestone_object(client: PortalClient) -> None:
    events = _events(
        "tasklists",
        _all(client.children(spec_for(Module.TASKLISTS).paths, PROJECT)),
        project_id=PROJECT,
    )
    assert [t["milestone_id"] for t in events] == ["1817452000006072801", None]


# -- tasks and issues ---------------------------------------------------------------------


def test_tasks_page_by_has_next_page_and_take_owners_and_work(client: PortalClient) -> None:
    pages = list(client.children(spec_for(Module.TASKS).paths, PROJECT))
    review, cleanup = _events("tasks", _all(iter(pages)), project_id=PROJECT)
    assert len(pages) == 2
    assert review["owners"] == [
        {"id": "1817452000000037003", "name": "Eric Nyaga", "email": "eric.nyaga@example.com"}
    ]
    assert (review["tasklist_id"], review["milestone_id"]) == (
        "1817452000006072901",
        "1817452000006072801",
    )
    assert (review["status"], review["billing_type"]) == ("Open", "Billable")
    # An unassigned slot (zuid 0) is nobody; snake-case billing is the contract's value.
    assert cleanup["owners"] == [] and cleanup["billing_type"] == "Non Billable"


def test_issues_convert_to_bugs_with_title_severity_and_assignee(client: PortalClient) -> None:
    safari, typo = _events(
        "bugs", _all(client.children(spec_for(Module.BUGS).paths, PROJECT)), project_id=PROJECT
    )
    assert (safari["title"], safari["severity"], safari["status"]) == (
        "Checkout fails on Safari",
        "Major",
        "Open",
    )
    assert safari["assignee"]["id"] == "1817452000000037003"
    assert typo["assignee"] is None and typo["severity"] == "Minor"


# -- time logs ----------------------------------------------------------------------------


def _logs(client: PortalClient, project: str = PROJECT) -> list[dict[str, Any]]:
    window = client.timelogs(project, date(2026, 6, 1), date(2026, 11, 30), by_modified_time=False)
    return _all(window)


def test_time_logs_of_every_type_convert_to_timesheets(client: PortalClient) -> None:
    records = _logs(client)
    task_log, pending, issue_log, general = _events("timesheets", records, project_id=PROJECT)

    assert task_log == {
        **task_log,
        "id": LOG,
        "log_date": "2026-11-20",
        "minutes": 150,
        "bill_status": "Billable",
        "approval_status": "Approved",
        "task_id": "1817452000006073011",
        "bug_id": None,
        "notes": "<div>API review</div>",
    }
    assert task_log["owner"]["email"] == "eric.nyaga@example.com"
    assert (pending["id"], pending["minutes"]) == ("1817452000006090005", 90)
    assert (pending["bill_status"], pending["approval_status"]) == ("Non Billable", "Pending")
    assert (issue_log["bug_id"], issue_log["task_id"], issue_log["minutes"]) == (
        "1817452000006074001",
        None,
        216,
    )
    assert (general["task_id"], general["bug_id"]) == (None, None)
    assert general["name"] == "Weekly client call"
    assert general["notes"] == "<div>Status call with Globex</div>"


def test_a_time_log_version_is_its_last_modified_time(client: PortalClient) -> None:
    assert modified_at(_logs(client)[0]) == datetime(2026, 11, 20, 11, 31, 5, 649000, tzinfo=UTC)


def test_a_project_without_logs_answers_204_for_every_type(client: PortalClient) -> None:
    assert _logs(client, QUIET) == []


def test_one_log_is_found_at_logs_with_its_type_and_a_deleted_one_is_not(
    client: PortalClient,
) -> None:
    assert client.log_exists(PROJECT, LOG, "task") is True
    assert client.log_exists(PROJECT, "1817452000006099999", "task") is False
