"""Portal REST records → webhook events (the webhook contract), so a pull feeds the
same consumer and rules as webhooks.

Pure functions, one per module (``convert_<module>``, named by the module's spec in
``worker.sync``). Each takes one record as the REST API returns it (V3, with the
documented V2 spellings accepted) and returns the event data that a webhook for
the same change would carry; the pull validates the event afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "Converter",
    "convert_bug",
    "convert_milestone",
    "convert_project",
    "convert_task",
    "convert_tasklist",
    "convert_timesheet",
    "convert_user",
    "modified_at",
    "pull_event",
    "to_event_data",
]

# One record as the REST API returns it (and what else it needs, as keywords) → the
# contract's ``data``; each module's spec (``worker.sync``) names its converter.
Converter = Callable[..., dict[str, Any]]

PROJECT_STATUSES = frozenset({"active", "archived", "template"})
MILESTONE_STATUSES = frozenset({"completed", "notcompleted"})
ROLES = frozenset({"admin", "manager", "employee", "contractor"})
BILLING_METHODS = (
    "fixed_cost_for_project",
    "based_on_project_hours",
    "based_on_task_hours",
    "based_on_staff_hours",
)
_NOBODY = {None, "0"}
_HHMM = re.compile(r"\d{1,4}:[0-5]\d")
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
    convert: Converter, record: dict[str, Any], project_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The part-A ``data`` of ``record`` (``project_id`` for children of a project)."""
    data = convert(record, **extra)
    if project_id is not None:
        data["project_id"] = project_id
    return _without_none(data)


def convert_project(record: dict[str, Any], *, clients: list[dict[str, Any]]) -> dict[str, Any]:
    client = clients[0] if clients else None
    # V3 live exports carry the currency only under budget_info; V2 at the top.
    currency = _dict(record.get("budget_info")).get("currency") or record.get("currency_code")
    return {
        "id": _str(record.get("id")),
        "name": record.get("name"),
        # V3: status {name: "Active"} (and project_type "active"); V2: "active".
        "status": _choice(
            _name(record.get("status")) or record.get("project_type"), PROJECT_STATUSES
        ),
        "currency_code": currency,
        # No V3 answer seen carries a billing method or rate (billing is then set on
        # the invoicing side); V2 answers do, at the top.
        "billing_type": _billing_method(record.get("billing_type") or record.get("billing_method")),
        "rate": _first(record, "rate", "project_rate"),
        "budget_value": record.get("budget_value"),
        "owner": _person(record.get("owner"))
        or _person(
            {
                "zpuid": record.get("owner_zpuid") or record.get("owner_id"),
                "name": record.get("owner_name"),
                "email": record.get("owner_email"),
            }
        ),
        "primary_client": _client(client, record.get("crm_id"), currency) if client else None,
        "custom_fields": _custom_fields(record.get("custom_fields")),
    }


def _client(
    client: dict[str, Any], project_crm_id: str | None, project_currency: str | None
) -> dict[str, Any]:
    # Zoho imports only customers of the project's currency into a project, so a
    # client listed without a currency has the project's.
    return _without_none(
        {
            "id": _str(client.get("id")),
            "name": client.get("name") or client.get("company_name"),
            "email": client.get("email"),
            "currency_code": client.get("currency_code") or project_currency,
            "crm_id": _str(client.get("crm_id") or project_crm_id),
        }
    )


def convert_user(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _person_id(record),
        "name": _full_name(record),
        "email": record.get("email"),
        "role": _role(_name(record.get("role"))),
        "active": _active(record),
    }


def convert_milestone(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _str(record.get("id")),
        "name": record.get("name"),
        "status": _choice(_name(record.get("status")), MILESTONE_STATUSES),
        "start_date": _iso_date(record.get("start_date")),
        "end_date": _iso_date(record.get("end_date")),
    }


def convert_tasklist(record: dict[str, Any]) -> dict[str, Any]:
    milestone = _dict(record.get("milestone") or record.get("phase"))
    return {
        "id": _str(record.get("id")),
        "name": record.get("name"),
        "milestone_id": _str(milestone.get("id") or record.get("milestone_id")),
    }


def convert_task(record: dict[str, Any]) -> dict[str, Any]:
    tasklist = _dict(record.get("tasklist"))
    milestone = _dict(record.get("milestone"))
    # V3 owners_and_work.owners; V2 details.owners; some clients flatten to owners.
    owners = (
        _dict(record.get("owners_and_work")).get("owners")
        or _dict(record.get("details")).get("owners")
        or record.get("owners")
        or []
    )
    return {
        "id": _str(record.get("id")),
        "name": record.get("name"),
        "tasklist_id": _str(tasklist.get("id") or record.get("tasklist_id")),
        "milestone_id": _str(milestone.get("id") or record.get("milestone_id")),
        "status": _name(record.get("status")),
        "billing_type": _task_billing(record.get("billing_type") or record.get("billingtype")),
        "rate": record.get("rate"),
        # The portal lists an unassigned task's owner as zpuid/zuid 0: nobody.
        "owners": [
            _person(o) for o in owners if isinstance(o, dict) and _person_id(o) not in _NOBODY
        ],
        "custom_fields": _custom_fields(record.get("custom_fields")),
    }


def convert_bug(record: dict[str, Any]) -> dict[str, Any]:
    # V3 calls bugs issues, titled ``name``; V2 ``title``.
    return {
        "id": _str(record.get("id")),
        "title": record.get("title") or record.get("name"),
        "status": _name(record.get("status"), "name", "type"),
        "severity": _name(record.get("severity"), "value", "name", "type"),
        "assignee": _assignee(_one(record.get("assignee"))),
    }


def convert_timesheet(record: dict[str, Any]) -> dict[str, Any]:
    detail = _dict(record.get("module_detail"))
    kind = detail.get("type")
    # V3 names the log's task or issue in module_detail; V2 in task {id} / bug {id}.
    task_id = (detail.get("id") if kind == "task" else None) or _dict(record.get("task")).get("id")
    bug_id = (detail.get("id") if kind in ("bug", "issue") else None) or (
        _dict(record.get("bug")).get("id") or _dict(record.get("issue")).get("id")
    )
    approval = record.get("approval")
    return {
        "id": _str(record.get("id")),
        "log_date": _iso_date(record.get("date") or record.get("log_date")),
        "minutes": _minutes(record),
        # V3 billing_status; V2 and older typed clients bill_status.
        "bill_status": _bill_status(record.get("billing_status") or record.get("bill_status")),
        # V3 approval {status}; V2 approval_status.
        "approval_status": _approval(
            _name(approval, "status") if approval else record.get("approval_status")
        ),
        "owner": _person(record.get("owner"))
        or _person(
            {
                "zpuid": record.get("owner_zpuid") or record.get("owner_id"),
                "name": record.get("owner_name"),
            }
        ),
        "task_id": _str(task_id),
        "bug_id": _str(bug_id),
        "name": (detail.get("name") if kind == "general" else None)
        or record.get("name")
        or record.get("log_name"),
        "notes": record.get("notes") or record.get("log_notes"),
    }


def _minutes(record: dict[str, Any]) -> int | None:
    """The logged duration, or None when the record names none (it is then invalid).

    ``total_minutes``, ``hours`` + ``minutes`` (older typed clients), or an
    ``"HH:MM"`` text: V3 ``log_hour``, V2 ``hours_display``.
    """
    if record.get("total_minutes") is not None:
        return int(record["total_minutes"])
    if isinstance(record.get("hours"), int) and isinstance(record.get("minutes"), int):
        return int(record["hours"]) * 60 + int(record["minutes"])
    text = record.get("log_hour") or record.get("hours_display") or record.get("hours")
    if not isinstance(text, str) or not _HHMM.fullmatch(text.strip()):
        return None
    hours, _, minutes = text.strip().partition(":")
    return int(hours) * 60 + int(minutes)


def _person(person: Any) -> dict[str, Any] | None:
    if not isinstance(person, dict) or not _person_id(person):
        return None
    return _without_none(
        {"id": _person_id(person), "name": _full_name(person), "email": person.get("email")}
    )


def _assignee(person: Any) -> dict[str, Any] | None:
    # V3 issues name nobody as the user "Unassigned User".
    if isinstance(person, dict) and _squash(_full_name(person)) == "unassigneduser":
        return None
    return _person(person)


def _person_id(person: dict[str, Any]) -> str | None:
    # Logs and tasks name people by portal-user id (zpuid); fall back to the account id.
    return _str(person.get("zpuid") or person.get("id") or person.get("zuid"))


def _full_name(person: dict[str, Any]) -> str | None:
    first_last = " ".join(str(person[k]) for k in ("first_name", "last_name") if person.get(k))
    return person.get("full_name") or first_last or person.get("name") or person.get("display_name")


def _active(record: dict[str, Any]) -> bool:
    """``active`` (bool or text); V3 users may carry a ``status`` instead."""
    if "active" in record:
        return _bool(record["active"])
    if "is_active" in record:
        return _bool(record["is_active"])
    status = _name(record.get("status"))
    return status is None or str(status).strip().lower() == "active"


def _name(value: Any, *keys: str) -> Any:
    """The text of a value that is either text or an object ({name}, {type}, …)."""
    if not isinstance(value, dict):
        return value
    for key in keys or ("name",):
        if value.get(key) is not None:
            return value[key]
    return None


def _choice(value: Any, allowed: frozenset[str]) -> str | None:
    """A free-text status or role as one of the contract's values, or None (unknown)."""
    text = _squash(value)
    return text if text in allowed else None


def _squash(value: Any) -> str:
    return str(value or "").strip().lower().replace(" ", "").replace("_", "").replace("-", "")


def _role(value: Any) -> str | None:
    """The contract's role from a portal role name ("Administrator", "Employee", …)."""
    text = _squash(value)
    return "admin" if text == "administrator" else _choice(text, ROLES)


def _bill_status(value: Any) -> Any:
    """ "Billable" / "Non Billable" from any spelling; an unknown one is kept (invalid)."""
    return {"billable": "Billable", "nonbillable": "Non Billable"}.get(_squash(value), value)


def _task_billing(value: Any) -> Any:
    return {"billable": "Billable", "nonbillable": "Non Billable", "none": "None"}.get(
        _squash(value), value
    )


def _approval(value: Any) -> Any:
    names = {
        "approved": "Approved",
        "pending": "Pending",
        "unapproved": "Unapproved",
        "notapproved": "Unapproved",
        "rejected": "Rejected",
    }
    return names.get(_squash(value), value)


def _billing_method(value: Any) -> Any:
    """A project's billing method as the contract's value; unknown spellings are dropped."""
    text = _squash(value)
    for method in BILLING_METHODS:
        if text == method.replace("_", ""):
            return method
    return None


def _custom_fields(value: Any) -> dict[str, Any] | None:
    """Label-keyed custom fields, from a dict or the V2 list of one-key dicts
    (or of ``{label, value}`` objects)."""
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, dict):
                continue
            if "label" in item and "value" in item:
                merged[str(item["label"])] = item["value"]
            else:
                merged.update(item)
        return merged or None
    return value if isinstance(value, dict) and value else None


def _iso_date(value: Any) -> str | None:
    """YYYY-MM-DD from ISO or V2 ``MM-DD-YYYY`` (with or without a time part)."""
    if not value:
        return None
    text = str(value).split(" ")[0].split("T")[0]
    if len(text) == 10 and text[2] == "-" and text[5] == "-":
        month, day, year = text.split("-")
        return f"{year}-{month}-{day}"
    return text


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _one(value: Any) -> Any:
    """The first of a list (some answers list a single assignee)."""
    return value[0] if isinstance(value, list) and value else value


def _first(record: dict[str, Any], *keys: str) -> Any:
    return next((record[k] for k in keys if record.get(k) is not None), None)


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _str(value: Any) -> str | None:
    """Ids arrive as numbers or strings; they are kept as strings (they exceed 2^53)."""
    return None if value in (None, "") else str(value)


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
