"""Builders of portal webhook events (the webhook contract), for tests and benchmarks."""

from __future__ import annotations

from typing import Any

AT = "2026-11-24T10:00:00Z"
CLIENT = {"id": "C1", "name": "Globex", "email": "ap@globex.example", "currency_code": "USD"}
ASHA = {"id": "U1", "name": "Asha Rao", "email": "asha@example.com"}


def event(
    module: str, data: dict[str, Any], *, action: str = "updated", at: str = AT
) -> dict[str, Any]:
    return {"module": module, "action": action, "modified_at": at, "data": data}


def project(
    pid: str = "P1", *, client: dict[str, Any] | None = CLIENT, at: str = AT, **data: Any
) -> dict[str, Any]:
    return event(
        "projects", {"id": pid, "name": f"Project {pid}", "primary_client": client, **data}, at=at
    )


def milestone(mid: str, pid: str = "P1", *, at: str = AT) -> dict[str, Any]:
    return event("milestones", {"id": mid, "project_id": pid, "name": f"Milestone {mid}"}, at=at)


def tasklist(lid: str, pid: str = "P1", *, at: str = AT) -> dict[str, Any]:
    return event("tasklists", {"id": lid, "project_id": pid, "name": f"List {lid}"}, at=at)


def task(tid: str, pid: str = "P1", *, at: str = AT, **data: Any) -> dict[str, Any]:
    return event("tasks", {"id": tid, "project_id": pid, "name": f"Task {tid}", **data}, at=at)


def bug(bid: str, pid: str = "P1", *, at: str = AT) -> dict[str, Any]:
    return event("bugs", {"id": bid, "project_id": pid, "title": f"Bug {bid}"}, at=at)


def user(uid: str = "U1", email: str = "asha@example.com", *, at: str = AT) -> dict[str, Any]:
    return event("users", {"id": uid, "name": f"User {uid}", "email": email}, at=at)


def timesheet(
    lid: str,
    pid: str = "P1",
    *,
    task_id: str | None = None,
    bug_id: str | None = None,
    log_date: str = "2026-11-20",
    minutes: int = 60,
    bill_status: str = "Billable",
    approval_status: str = "Approved",
    owner: dict[str, Any] = ASHA,
    at: str = AT,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": lid,
        "project_id": pid,
        "log_date": log_date,
        "minutes": minutes,
        "bill_status": bill_status,
        "approval_status": approval_status,
        "owner": owner,
    }
    if task_id:
        data["task_id"] = task_id
    if bug_id:
        data["bug_id"] = bug_id
    if not task_id and not bug_id:
        data["name"] = "General work"
    return event("timesheets", data, at=at)


def deleted(
    module: str, record_id: str, project_id: str | None = None, *, at: str = AT
) -> dict[str, Any]:
    data = {"id": record_id} if project_id is None else {"id": record_id, "project_id": project_id}
    return event(module, data, action="deleted", at=at)
