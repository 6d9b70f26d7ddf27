"""How the fake portal spells a stored record: Zoho Projects V3 as live answers show it,
or the older spellings (V2 and older typed clients) behind ``FakePortal(legacy=True)``.

Records are stored in the webhook ``data`` shape; these functions render one record.
The V3 shapes follow ``worker.portal``'s table of sources (live exports and public
clients): string project ids, numeric milestone and task-list ids, ``status`` and
``budget_info`` objects, ``owners_and_work.owners``, issues named ``name`` with a
``severity {id, value}``, time logs with ``billing_status``, ``approval {status}``,
``log_hour`` "HH:MM" and ``last_modified_time``. What V3 was not seen to carry
(a project's billing method and rate, a task's rate) is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["iso", "render_legacy", "render_v3"]

Lookup = Callable[[str, str], dict[str, Any] | None]  # (module, id) -> stored record


def render_v3(module: str, d: dict[str, Any], modified: datetime, lookup: Lookup) -> dict[str, Any]:
    """The V3 spelling of one stored record."""
    stamp = iso(modified)
    match module:
        case "projects":
            return {
                "id": d["id"],
                "key": f"PR-{d['id'][-4:]}",
                "name": d.get("name"),
                "project_type": d.get("status") or "active",
                "status": _status(d.get("status") or "active"),
                "owner": _user_ref(d.get("owner")),
                "budget_info": {
                    "currency": d.get("currency_code"),
                    "tracking_method": "project_hours",
                },
                "created_time": stamp,
                "modified_time": stamp,
            }
        case "users":
            return {
                "zpuid": d["id"],
                "zuid": _number(d["id"]) % 10**9,
                "name": d.get("name"),
                "full_name": d.get("name"),
                "email": d.get("email"),
                "role": {"name": (d.get("role") or "employee").title()},
                "is_active": d.get("active", True),
            }
        case "milestones":
            return {
                "id": _json_id(d["id"]),
                "id_string": d["id"],
                "name": d.get("name"),
                "status": d.get("status"),
                "start_date": d.get("start_date"),
                "end_date": d.get("end_date"),
                "modified_time": stamp,
            }
        case "tasklists":
            milestone = d.get("milestone_id")
            return {
                "id": _json_id(d["id"]),
                "id_string": d["id"],
                "name": d.get("name"),
                "milestone": {"id": _json_id(milestone)} if milestone else None,
                "modified_time": stamp,
            }
        case "tasks":
            owners = [_user_ref(o) for o in d.get("owners") or []]
            return {
                "id": d["id"],
                "prefix": f"T{d['id'][-4:]}",
                "name": d.get("name"),
                "tasklist": {"id": d["tasklist_id"]} if d.get("tasklist_id") else None,
                "milestone": {"id": d["milestone_id"]} if d.get("milestone_id") else None,
                "status": _status(d.get("status")),
                "billing_type": _snake(d.get("billing_type")),
                # An unassigned task lists the owner slot as zuid 0.
                "owners_and_work": {"owners": owners or [_NOBODY], "total_work": "00:00"},
                "modified_time": stamp,
            }
        case "bugs":
            return {
                "id": d["id"],
                "prefix": f"I{d['id'][-4:]}",
                "name": d.get("title"),
                "status": _status(d.get("status")),
                "severity": {"id": "1", "value": d.get("severity")} if d.get("severity") else None,
                "assignee": _user_ref(d.get("assignee")) or {"name": "Unassigned User"},
                "modified_time": stamp,
            }
        case "timesheets":
            minutes = int(d["minutes"])
            kind, detail = _log_target(d, lookup)
            return {
                "id": d["id"],
                "date": d["log_date"],
                "log_hour": f"{minutes // 60:02d}:{minutes % 60:02d}",
                "billing_status": d.get("bill_status"),
                "approval": {"status": d.get("approval_status")},
                "owner": _user_ref(d.get("owner")),
                "module_detail": detail,
                "type": kind,
                "project": {"id": d["project_id"]},
                "notes": d.get("notes"),
                "log_notes": d.get("notes"),
                "created_time": stamp,
                "last_modified_time": stamp,
            }
    raise ValueError(module)


def render_legacy(
    module: str, d: dict[str, Any], modified: datetime, lookup: Lookup
) -> dict[str, Any]:
    """The older spellings: V2 field names, top-level billing, ``title``, flat statuses."""
    body: dict[str, Any]
    match module:
        case "projects":
            client = d.get("primary_client") or {}
            body = _pick(d, "id", "name", "currency_code", "billing_type", "rate", "budget_value")
            body |= {
                "status": d.get("status"),
                "owner": _user_ref(d.get("owner")),
                "custom_fields": [{k: v} for k, v in (d.get("custom_fields") or {}).items()],
                "crm_id": client.get("crm_id"),
            }
        case "users":
            body = {"zpuid": d["id"], **_pick(d, "name", "email", "role", "active")}
        case "milestones":
            body = _pick(d, "id", "name", "status", "start_date", "end_date")
        case "tasklists":
            body = {**_pick(d, "id", "name"), "milestone_id": d.get("milestone_id")}
        case "tasks":
            body = _pick(d, "id", "name", "tasklist_id", "milestone_id", "rate")
            body |= {
                "billingtype": d.get("billing_type"),
                "status": {"name": d.get("status")},
                "details": {"owners": [_user_ref(o) for o in d.get("owners") or []]},
                "custom_fields": [{k: v} for k, v in (d.get("custom_fields") or {}).items()],
            }
        case "bugs":
            body = _pick(d, "id", "title") | {
                "status": {"type": d.get("status")},
                "severity": {"type": d.get("severity")},
                "assignee": _user_ref(d.get("assignee")),
            }
        case "timesheets":
            minutes = int(d["minutes"])
            body = _pick(d, "id", "bill_status", "approval_status", "notes", "name") | {
                "log_date": _us_date(d["log_date"]),
                "total_minutes": minutes,
                "hours_display": f"{minutes // 60}:{minutes % 60:02d}",
                "owner": _user_ref(d.get("owner")),
            }
            if d.get("task_id"):
                body["task"] = {"id": d["task_id"]}
            if d.get("bug_id"):
                body["bug"] = {"id": d["bug_id"]}
        case _:
            raise ValueError(module)
    return body | {"last_modified_time_long": int(modified.timestamp() * 1000)}


def log_type(d: dict[str, Any]) -> str:
    """The V3 log type a stored time log is listed under."""
    return "task" if d.get("task_id") else "issue" if d.get("bug_id") else "general"


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _log_target(d: dict[str, Any], lookup: Lookup) -> tuple[str, dict[str, Any]]:
    kind = log_type(d)
    if kind == "general":
        return kind, {"type": "general", "name": d.get("name")}
    module, key, label = (
        ("tasks", "task_id", "name") if kind == "task" else ("bugs", "bug_id", "title")
    )
    target = lookup(module, d[key]) or {}
    # Live answers call an issue's log target "bug" while the log's own type is "issue".
    return kind, {
        "id": d[key],
        "type": "task" if kind == "task" else "bug",
        "name": target.get(label),
    }


def _user_ref(person: dict[str, Any] | None) -> dict[str, Any] | None:
    if not person:
        return None
    first, _, last = str(person.get("name") or "").partition(" ")
    return {
        "zpuid": person.get("id"),
        "zuid": _number(person.get("id")) % 10**9,
        "name": person.get("name"),
        "first_name": first,
        "last_name": last,
        "full_name": person.get("name"),
        "email": person.get("email"),
    }


def _status(name: Any) -> dict[str, Any] | None:
    if name is None:
        return None
    return {"id": "2447529000000020089", "name": str(name).title(), "is_closed_type": False}


def _snake(value: Any) -> str | None:
    return None if value is None else str(value).lower().replace(" ", "_")


def _json_id(value: str) -> int | str:
    """A numeric id as a JSON number, as some V3 answers send them (beyond 2^53: a
    client that reads JSON numbers as doubles would corrupt them)."""
    return int(value) if value.isdigit() else value


def _number(value: Any) -> int:
    """Some number derived from an id (for zuids, which billsync does not use)."""
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    return int(digits or 0)


def _pick(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: data.get(key) for key in keys}


def _us_date(iso_date: str) -> str:
    year, month, day = iso_date.split("-")
    return f"{month}-{day}-{year}"


_NOBODY = {"zpuid": "0", "zuid": 0, "name": "Unassigned"}
