"""Portal REST records → webhook events (PORTAL_API part A), so a pull feeds the
same consumer and rules as webhooks.

Pure functions. Each takes one record as the REST API returns it (V3, with the
documented V2 spellings accepted) and returns the event dict that a webhook for
the same change would carry; ``event_adapter`` validates it afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["modified_at", "pull_event", "to_event_data"]

PROJECT_STATUSES = frozenset({"active", "archived", "template"})
MILESTONE_STATUSES = frozenset({"completed", "notcompleted"})
ROLES = frozenset({"admin", "manager", "employee", "contractor"})
_MS_KEYS = ("last_modified_time_long", "updated_date_long", "last_updated_time_long")


def modified_at(record: dict[str, Any]) -> datetime | None:
    """The record's source version: ISO ``modified_time`` (V3) or epoch ms (V2)."""
    text = record.get("modified_time") or record.get("last_modified_time")
    if isinstance(text, str) and not text.isdigit():
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            pass  # a V2 display date ("11-24-2026"): the *_long field is the version
    for key in _MS_KEYS:
        if record.get(key):
            return datetime.fromtimestamp(int(record[key]) / 1000, UTC)
    if isinstance(text, str) and text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    return None


def pull_event(
    module: str, data: dict[str, Any], version: datetime, *, action: str = "updated"
) -> dict[str, Any]:
    return {
        "module": module,
        "action": action,
        "modified_at": version.isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def to_event_data(
    module: str, record: dict[str, Any], project_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The part-A ``data`` of ``record`` (``project_id`` for children of a project)."""
    data = CONVERTERS[module](record, **extra)
    if project_id is not None:
        data["project_id"] = project_id
    return _without_none(data)


def _project(record: dict[str, Any], *, clients: list[dict[str, Any]]) -> dict[str, Any]:
    client = clients[0] if clients else None
    return {
        "id": str(record["id"]),
        "name": record.get("name"),
        "status": _choice(_name(record.get("status")), PROJECT_STATUSES),
        "currency_code": record.get("currency_code"),
        "billing_type": record.get("billing_type") or record.get("billing_method"),
        "rate": record.get("rate") or record.get("project_rate"),
        "budget_value": record.get("budget_value"),
        "owner": _person(record.get("owner")),
        "primary_client": _client(client, record.get("crm_id")) if client else None,
        "custom_fields": _custom_fields(record.get("custom_fields")),
    }


def _client(client: dict[str, Any], project_crm_id: str | None) -> dict[str, Any]:
    return _without_none(
        {
            "id": str(client["id"]),
            "name": client.get("name") or client.get("company_name"),
            "email": client.get("email"),
            "currency_code": client.get("currency_code"),
            "crm_id": client.get("crm_id") or project_crm_id,
        }
    )


def _user(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _person_id(record),
        "name": record.get("name") or record.get("full_name"),
        "email": record.get("email"),
        "role": _choice(_name(record.get("role")), ROLES),
        "active": _bool(record.get("active", True)),
    }


def _milestone(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(record["id"]),
        "name": record.get("name"),
        "status": _choice(_name(record.get("status")), MILESTONE_STATUSES),
        "start_date": _iso_date(record.get("start_date")),
        "end_date": _iso_date(record.get("end_date")),
    }


def _tasklist(record: dict[str, Any]) -> dict[str, Any]:
    milestone = record.get("milestone") or {}
    return {
        "id": str(record["id"]),
        "name": record.get("name"),
        "milestone_id": _str(milestone.get("id") or record.get("milestone_id")),
    }


def _task(record: dict[str, Any]) -> dict[str, Any]:
    tasklist = record.get("tasklist") or {}
    owners = record.get("owners") or (record.get("details") or {}).get("owners") or []
    return {
        "id": str(record["id"]),
        "name": record.get("name"),
        "tasklist_id": _str(tasklist.get("id") or record.get("tasklist_id")),
        "milestone_id": _str(record.get("milestone_id")),
        "status": _name(record.get("status")),
        "billing_type": record.get("billing_type") or record.get("billingtype"),
        "rate": record.get("rate"),
        "owners": [_person(o) for o in owners if o],
        "custom_fields": _custom_fields(record.get("custom_fields")),
    }


def _bug(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(record["id"]),
        "title": record.get("title"),
        "status": _name(record.get("status"), "type"),
        "severity": _name(record.get("severity"), "type"),
        "assignee": _person(record.get("assignee")),
    }


def _timesheet(record: dict[str, Any]) -> dict[str, Any]:
    detail = record.get("module_detail") or {}
    kind = detail.get("type")
    # V3 names the log's task or bug in module_detail; V2 in task {id} / bug {id}.
    task_id = (detail.get("id") if kind == "task" else None) or (record.get("task") or {}).get("id")
    bug_id = (detail.get("id") if kind in ("bug", "issue") else None) or (
        record.get("bug") or {}
    ).get("id")
    return {
        "id": str(record["id"]),
        "log_date": _iso_date(record.get("date") or record.get("log_date")),
        "minutes": _minutes(record),
        "bill_status": record.get("bill_status"),
        "approval_status": record.get("approval_status"),
        "owner": _person(record.get("owner"))
        or {"id": _str(record.get("owner_id")), "name": record.get("owner_name")},
        "task_id": _str(task_id),
        "bug_id": _str(bug_id),
        "name": record.get("name") or record.get("log_name"),
        "notes": record.get("notes"),
    }


CONVERTERS: dict[str, Callable[..., dict[str, Any]]] = {
    "projects": _project,
    "users": _user,
    "milestones": _milestone,
    "tasklists": _tasklist,
    "tasks": _task,
    "bugs": _bug,
    "timesheets": _timesheet,
}


def _minutes(record: dict[str, Any]) -> int:
    if record.get("total_minutes") is not None:
        return int(record["total_minutes"])
    hours, _, minutes = str(record.get("log_hour") or record.get("hours_display") or "0").partition(
        ":"
    )
    return int(hours or 0) * 60 + int(minutes or 0)


def _person(person: dict[str, Any] | None) -> dict[str, Any] | None:
    if not person:
        return None
    return _without_none(
        {
            "id": _person_id(person),
            "name": person.get("name") or person.get("full_name") or person.get("first_name"),
            "email": person.get("email"),
        }
    )


def _person_id(person: dict[str, Any]) -> str:
    # Logs and tasks name people by portal-user id (zpuid); fall back to the account id.
    return str(person.get("zpuid") or person.get("id"))


def _name(value: Any, key: str = "name") -> Any:
    return value.get(key) if isinstance(value, dict) else value


def _choice(value: Any, allowed: frozenset[str]) -> str | None:
    """A free-text status or role as one of the contract's values, or None (unknown)."""
    text = str(value or "").strip().lower().replace(" ", "")
    return text if text in allowed else None


def _custom_fields(value: Any) -> dict[str, Any] | None:
    """Label-keyed custom fields, from a dict or the V2 list of one-key dicts."""
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(item)
        return merged or None
    return value or None


def _iso_date(value: Any) -> str | None:
    """YYYY-MM-DD from ISO or V2 ``MM-DD-YYYY`` (with or without a time part)."""
    if not value:
        return None
    text = str(value).split(" ")[0].split("T")[0]
    if len(text) == 10 and text[2] == "-" and text[5] == "-":
        month, day, year = text.split("-")
        return f"{year}-{month}-{day}"
    return text


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
