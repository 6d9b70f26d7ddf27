"""Portal change events (the webhook contract) for tests, benchmarks and the fakes.

One builder per module, each a valid event with what the defaults leave out given by
keyword (``at`` is ``modified_at``; ``event_id`` is the event's own, optional id).
Then one way to hand them on: ``message`` wraps one as the queue carries it (what the
gateway or the pull publishes), ``webhook_body`` as a webhook request body.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from schemas import QueueMessage, event_adapter
from schemas.messages import Source

Event = dict[str, Any]

AT = "2026-11-24T10:00:00Z"
CLIENT = {"id": "C1", "name": "Globex", "email": "ap@globex.example", "currency_code": "USD"}
ASHA = {"id": "U1", "name": "Asha Rao", "email": "asha@example.com"}


def event(
    module: str,
    data: dict[str, Any],
    *,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
) -> Event:
    """An event of any module, ``data`` as given."""
    built: Event = {"module": module, "action": action, "modified_at": at, "data": data}
    if event_id is not None:
        built["event_id"] = event_id
    return built


def project(
    pid: str = "P1",
    *,
    name: str | None = None,
    client: dict[str, Any] | None = CLIENT,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
    **data: Any,
) -> Event:
    fields = {"id": pid, "name": name or f"Project {pid}", "primary_client": client, **data}
    return event("projects", fields, action=action, at=at, event_id=event_id)


def user(
    uid: str = "U1",
    email: str = "asha@example.com",
    *,
    name: str | None = None,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
) -> Event:
    fields = {"id": uid, "name": name or f"User {uid}", "email": email}
    return event("users", fields, action=action, at=at, event_id=event_id)


def milestone(
    mid: str = "M1",
    pid: str = "P1",
    *,
    name: str | None = None,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
    **data: Any,
) -> Event:
    fields = {"id": mid, "project_id": pid, "name": name or f"Milestone {mid}", **data}
    return event("milestones", fields, action=action, at=at, event_id=event_id)


def tasklist(
    lid: str = "L1",
    pid: str = "P1",
    *,
    name: str | None = None,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
    **data: Any,
) -> Event:
    fields = {"id": lid, "project_id": pid, "name": name or f"List {lid}", **data}
    return event("tasklists", fields, action=action, at=at, event_id=event_id)


def task(
    tid: str = "T1",
    pid: str = "P1",
    *,
    name: str | None = None,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
    **data: Any,
) -> Event:
    fields = {"id": tid, "project_id": pid, "name": name or f"Task {tid}", **data}
    return event("tasks", fields, action=action, at=at, event_id=event_id)


def bug(
    bid: str = "B1",
    pid: str = "P1",
    *,
    title: str | None = None,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
    **data: Any,
) -> Event:
    fields = {"id": bid, "project_id": pid, "title": title or f"Bug {bid}", **data}
    return event("bugs", fields, action=action, at=at, event_id=event_id)


def timesheet(
    lid: str = "L1",
    pid: str = "P1",
    *,
    task_id: str | None = None,
    bug_id: str | None = None,
    log_date: str = "2026-11-20",
    minutes: int = 60,
    bill_status: str = "Billable",
    approval_status: str = "Approved",
    owner: dict[str, Any] = ASHA,
    action: str = "updated",
    at: str = AT,
    event_id: str | None = None,
) -> Event:
    """A time log; one under neither a task nor a bug is general work."""
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
    return event("timesheets", data, action=action, at=at, event_id=event_id)


def deleted(
    module: str,
    record_id: str,
    project_id: str | None = None,
    *,
    at: str = AT,
    event_id: str | None = None,
) -> Event:
    """A delete: only the reference (children name their project)."""
    data = {"id": record_id} if project_id is None else {"id": record_id, "project_id": project_id}
    return event(module, data, action="deleted", at=at, event_id=event_id)


# -- handing them on ----------------------------------------------------------------------


def message(
    built: Event,
    integration_id: str,
    event_id: str | None = None,
    *,
    source: Source = "webhook",
) -> QueueMessage:
    """``built`` as the queue carries it. The id is ``event_id``, else the event's own,
    else a new one: as the gateway picks it."""
    return QueueMessage(
        event_id=event_id or built.get("event_id") or f"e-{uuid.uuid4().hex}",
        integration_id=integration_id,
        source=source,
        event=event_adapter.validate_python(built),
    )


def webhook_body(events: Event | list[Event]) -> bytes:
    """A webhook request's body: one event, or several as a JSON array."""
    return json.dumps(events).encode()
