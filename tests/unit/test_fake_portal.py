"""The fake portal serves the V3 shapes worker.portal expects and sends verifiable webhooks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from flask import Flask, request
from standardwebhooks.webhooks import Webhook

from schemas import event_adapter
from tests.fake_portal import TOKEN_HEADER, FakePortal, flask_deliver
from worker.integrations.store import new_webhook_secret

BASE = "/api/v3/portal/portal-1"
GENERAL = '{"type": "general"}'


@pytest.fixture
def portal() -> FakePortal:
    return FakePortal()


@pytest.fixture
def api(portal: FakePortal) -> Iterator[httpx.Client]:
    """The way the real client talks to it: httpx over a WSGI transport, with the token."""
    with httpx.Client(
        transport=httpx.WSGITransport(app=portal.app),
        base_url=f"http://portal.test{BASE}",
        headers={"Authorization": f"Zoho-oauthtoken {portal.access_token}"},
    ) as client:
        yield client


def _window(**extra: str) -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {
        "view_type": "customdate",
        "start_date": str(today - timedelta(days=90)),
        "end_date": str(today),
        **extra,
    }


def _collect() -> tuple[list[tuple[bytes, dict[str, str]]], Any]:
    received: list[tuple[bytes, dict[str, str]]] = []

    def deliver(body: bytes, headers: dict[str, str]) -> int:
        received.append((body, headers))
        return 202

    return received, deliver


# -- REST -------------------------------------------------------------------------------


def test_projects_are_a_bare_array_and_a_short_page_is_the_last(
    portal: FakePortal, api: httpx.Client
) -> None:
    # Given a seeded portal with 3 client projects and 1 without a client
    portal.seed()

    # When the projects are read three per page
    first = api.get("/projects", params={"per_page": 3}).json()
    last = api.get("/projects", params={"per_page": 3, "page": 2}).json()

    # Then each page is a bare array (no page_info) and the short one ends the list
    assert isinstance(first, list) and isinstance(last, list)
    assert (len(first), len(last)) == (3, 1)
    sample = first[0]
    assert sample["status"]["name"] == "Active" and sample["project_type"] == "active"
    assert sample["budget_info"]["currency"] in ("USD", "EUR")
    assert {"zpuid", "zuid", "email", "full_name"} <= set(sample["owner"])
    assert sample["modified_time"].endswith("Z") and "." in sample["modified_time"]
    assert not {"currency_code", "billing_type", "rate", "primary_client"} & set(sample)


def test_project_clients_are_served_on_the_v2_path_only(
    portal: FakePortal, api: httpx.Client
) -> None:
    portal.seed()
    ids = [p["id"] for p in api.get("/projects").json()]

    v3 = api.get(f"/projects/{ids[0]}/clients")
    clients = [
        api.get(f"http://portal.test/restapi/portal/portal-1/projects/{pid}/clients/").json()
        for pid in ids
    ]

    assert v3.status_code == 400
    assert v3.json()["error"]["title"] == "URL_RULE_NOT_CONFIGURED"
    assert sorted(len(c["clients"]) for c in clients) == [0, 1, 1, 1]


def test_milestones_answer_page_info_as_a_one_item_array(
    portal: FakePortal, api: httpx.Client
) -> None:
    portal.seed(projects=1, without_client=0)
    pid = next(iter(portal.records("projects")))

    body = api.get(f"/projects/{pid}/milestones").json()

    assert body["page_info"] == [{"page": 1, "per_page": 100, "has_next_page": False}]
    assert all(isinstance(m["id"], int) and m["id_string"] for m in body["milestones"])


def test_tasks_and_issues_in_v3_spellings(portal: FakePortal, api: httpx.Client) -> None:
    portal.seed(projects=1, without_client=0)
    pid = next(iter(portal.records("projects")))

    task = api.get(f"/projects/{pid}/tasks").json()["tasks"][0]
    issue = api.get(f"/projects/{pid}/issues").json()["issues"][0]
    bugs = api.get(f"/projects/{pid}/bugs")

    assert task["owners_and_work"]["owners"][0]["zpuid"]
    assert task["billing_type"] in ("billable", "non_billable")
    assert task["tasklist"]["id"] or task.get("tasklist") is None
    assert issue["name"] == "Checkout fails on Safari" and "title" not in issue
    assert issue["severity"] == {"id": "1", "value": "Major"}
    assert bugs.status_code == 400


def test_legacy_switch_answers_the_older_spellings(api: httpx.Client) -> None:
    portal = FakePortal(legacy=True)
    portal.seed(projects=1, without_client=0)
    pid = next(iter(portal.records("projects")))
    with httpx.Client(
        transport=httpx.WSGITransport(app=portal.app),
        base_url=f"http://portal.test{BASE}",
        headers={"Authorization": f"Zoho-oauthtoken {portal.access_token}"},
    ) as legacy:
        projects = legacy.get("/projects").json()
        bug = legacy.get(f"/projects/{pid}/bugs").json()["bugs"][0]
        logs = legacy.get(f"/projects/{pid}/timelogs", params=_window()).json()

    assert projects["page_info"]["has_next_page"] is False
    assert projects["projects"][0]["billing_type"] and projects["projects"][0]["currency_code"]
    assert bug["title"] == "Checkout fails on Safari"
    entry = logs["timelogs"]["date"][0]["tasklogs"][0]
    assert {"bill_status", "approval_status", "total_minutes"} <= set(entry)


def test_modified_times_strictly_increase(portal: FakePortal) -> None:
    for i in range(20):
        portal.put("users", {"id": "U1", "name": f"v{i}", "email": "u@example.com"})
        portal.put("users", {"id": "U2", "name": f"v{i}", "email": "w@example.com"})
    assert portal.modified_time("users", "U1") < portal.modified_time("users", "U2")
    assert portal.modified_time("users", "U2").microsecond % 1000 == 0


def _three_general_logs(portal: FakePortal) -> date:
    portal.put("projects", {"id": "P1", "name": "P1"})
    today = datetime.now(UTC).date()
    for lid, days_ago in (("L1", 1), ("L2", 1), ("L3", 2)):
        portal.put(
            "timesheets",
            {
                "id": lid,
                "project_id": "P1",
                "log_date": str(today - timedelta(days=days_ago)),
                "minutes": 90,
                "bill_status": "Billable",
                "approval_status": "Approved",
                "owner": {"id": "U1", "name": "Asha", "email": "asha@example.com"},
                "name": "General work",
            },
        )
    return today


def test_time_logs_of_one_type_page_by_entry_and_group_by_date(
    portal: FakePortal, api: httpx.Client
) -> None:
    # Given three general logs on two dates
    today = _three_general_logs(portal)

    # When the general logs are read two entries per page
    first = api.get("/projects/P1/timelogs", params=_window(per_page="2", module=GENERAL)).json()
    tasks = api.get("/projects/P1/timelogs", params=_window(module='{"type": "task"}'))

    # Then the page holds two entries, grouped under their one date
    assert first["page_info"]["has_next_page"] is True
    [group] = first["time_logs"]
    assert group["date"] == str(today - timedelta(days=1))
    assert [e["id"] for e in group["log_details"]] == ["L1", "L2"]
    entry = group["log_details"][0]
    assert (entry["log_hour"], entry["billing_status"]) == ("01:30", "Billable")
    assert entry["approval"] == {"status": "Approved"}
    assert entry["module_detail"] == {"type": "general", "name": "General work"}
    assert entry["owner"]["zpuid"] == "U1" and entry["last_modified_time"].endswith("Z")
    # and there are no task logs
    assert tasks.status_code == 204


def test_one_log_is_read_at_logs_with_its_type(portal: FakePortal, api: httpx.Client) -> None:
    _three_general_logs(portal)

    found = api.get("/projects/P1/logs/L1", params={"type": "general"})
    wrong_type = api.get("/projects/P1/logs/L1", params={"type": "task"})
    portal.delete("timesheets", "L1")
    gone = api.get("/projects/P1/logs/L1", params={"type": "general"})
    old_path = api.get("/projects/P1/timelogs/L2")

    assert found.status_code == 200
    assert found.json()["time_logs"][0]["log_details"][0]["id"] == "L1"
    assert wrong_type.status_code == gone.status_code == 404
    assert old_path.json()["error"]["title"] == "URL_RULE_NOT_CONFIGURED"


def test_empty_time_logs_are_204_and_a_bad_request_is_400(
    portal: FakePortal, api: httpx.Client
) -> None:
    portal.put("projects", {"id": "P1", "name": "P1"})

    empty = api.get("/projects/P1/timelogs", params=_window(module=GENERAL))
    too_long = api.get(
        "/projects/P1/timelogs",
        params=_window(start_date=str(date.today() - timedelta(days=200)), module=GENERAL),
    )
    no_window = api.get("/projects/P1/timelogs", params={"view_type": "customdate"})
    no_module = api.get("/projects/P1/timelogs", params=_window())

    assert (empty.status_code, empty.content) == (204, b"")
    assert too_long.status_code == no_window.status_code == no_module.status_code == 400
    assert too_long.json()["error"]["status_code"] == "400"
    assert "module" in no_module.json()["error"]["details"][0]["message"]


def test_requests_without_the_token_are_401_and_other_portals_404(portal: FakePortal) -> None:
    with httpx.Client(transport=httpx.WSGITransport(app=portal.app)) as raw:
        anonymous = raw.get(f"http://portal.test{BASE}/projects")
        other = raw.get(
            "http://portal.test/api/v3/portal/portal-2/projects",
            headers={"Authorization": "Zoho-oauthtoken fake-token"},
        )

    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["title"] == "INVALID_OAUTHTOKEN"
    assert anonymous.json()["error"]["error_type"] == "AUTHENTICATION"
    assert other.status_code == 400
    assert other.json()["error"]["title"] == "URL_RULE_NOT_CONFIGURED"
    assert [(m, p) for m, p, _ in portal.requests] == [
        ("GET", f"{BASE}/projects"),
        ("GET", "/api/v3/portal/portal-2/projects"),
    ]


def test_fail_next_answers_the_status_with_retry_after_then_recovers(
    portal: FakePortal, api: httpx.Client
) -> None:
    portal.fail_next(429, count=2, retry_after=7)

    statuses = [api.get("/users") for _ in range(3)]

    assert [r.status_code for r in statuses] == [429, 429, 200]
    assert statuses[0].headers["Retry-After"] == "7"
    assert statuses[0].json()["error"]["title"] == "TOO_MANY_REQUESTS"


def test_deleting_a_project_removes_its_children_with_one_webhook(
    portal: FakePortal, api: httpx.Client
) -> None:
    # Given a seeded portal that sends webhooks
    portal.seed(projects=2, without_client=0)
    received, deliver = _collect()
    portal.connect_webhooks(deliver)
    pid = next(iter(portal.records("projects")))
    task_id = next(t for t, task in portal.records("tasks").items() if task["project_id"] == pid)

    # When the project is deleted
    portal.delete("projects", pid)

    # Then its children are gone too, and only the project's deletion was sent
    for module in ("milestones", "tasklists", "tasks", "bugs", "timesheets"):
        assert all(r["project_id"] != pid for r in portal.records(module).values())
    assert [(e["module"], e["action"], e["data"]) for e in portal.delivered] == [
        ("projects", "deleted", {"id": pid})
    ]
    assert api.get(f"/projects/{pid}").status_code == 404
    assert api.get(f"/projects/{pid}/tasks/{task_id}").status_code == 404
    assert len(received) == 1


# -- webhooks -----------------------------------------------------------------------------


def test_webhooks_are_signed_verifiably_and_match_the_contract(portal: FakePortal) -> None:
    secret = new_webhook_secret()
    received, deliver = _collect()
    portal.connect_webhooks(deliver, secret=secret)

    portal.seed(projects=1, without_client=1, send_webhooks=True)
    portal.delete("tasks", next(iter(portal.records("tasks"))))

    assert len(received) == len(portal.delivered) > 10
    for body, headers in received:
        envelope = Webhook(secret).verify(body, headers)
        assert headers["webhook-id"] == envelope["event_id"]
        event_adapter.validate_json(body)
    assert portal.delivered[-1]["data"].keys() == {"id", "project_id"}


def test_token_mode_carries_the_token_header(portal: FakePortal) -> None:
    received, deliver = _collect()
    portal.connect_webhooks(deliver, token="bwt_secret")

    portal.put("users", {"id": "U1", "name": "Asha", "email": "asha@example.com"})

    [(body, headers)] = received
    assert headers[TOKEN_HEADER] == "bwt_secret" and "webhook-signature" not in headers
    assert json.loads(body)["action"] == "created"


def test_drops_and_duplicates_are_accounted_for(portal: FakePortal) -> None:
    received, deliver = _collect()
    portal.connect_webhooks(deliver, drop_rate=0.3, duplicate_rate=0.3, seed=4)

    for i in range(50):
        portal.put("users", {"id": f"U{i}", "name": "n", "email": f"u{i}@example.com"})

    sent = {e["event_id"] for e in portal.delivered}
    lost = {e["event_id"] for e in portal.dropped}
    assert portal.dropped and len(portal.delivered) > len(sent)  # some of each happened
    assert not sent & lost and len(sent | lost) == 50
    assert len(received) == len(portal.delivered) == len(portal.statuses)


def test_reorder_queues_until_flush(portal: FakePortal) -> None:
    received, deliver = _collect()
    portal.connect_webhooks(deliver, reorder=True, seed=1)

    for i in range(10):
        portal.put("users", {"id": f"U{i}", "name": "n", "email": f"u{i}@example.com"})
    assert received == []

    assert portal.flush_webhooks() == [202] * 10
    ids = [json.loads(body)["data"]["id"] for body, _ in received]
    assert sorted(ids) == sorted(f"U{i}" for i in range(10)) and ids != sorted(ids)


def test_flask_deliver_posts_json_to_the_integration_url(portal: FakePortal) -> None:
    gateway = Flask(__name__)
    seen: list[tuple[str, Any]] = []

    @gateway.post("/webhooks/<integration_id>")
    def receive(integration_id: str) -> tuple[str, int]:
        seen.append((integration_id, request.get_json()))
        return "", 202

    portal.connect_webhooks(flask_deliver(gateway.test_client(), "int-1"))
    portal.put("projects", {"id": "P1", "name": "P1"})

    assert portal.statuses == [202]
    assert seen == [("int-1", portal.delivered[0])]


def test_serve_answers_over_real_http(portal: FakePortal) -> None:
    portal.put("users", {"id": "U1", "name": "Asha", "email": "asha@example.com"})
    with portal.serve() as url:
        response = httpx.get(
            f"{url}{BASE}/users", headers={"Authorization": "Zoho-oauthtoken fake-token"}
        )
    assert response.json()["users"][0]["zpuid"] == "U1"
