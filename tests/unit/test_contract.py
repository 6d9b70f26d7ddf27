"""The webhook contract: a tagged union on module, deletes by reference, custom fields kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import DeletedEvent, QueueMessage, event_adapter
from schemas.envelope import TimesheetEvent
from tests.events import deleted, message
from webhook_gateway.errors import validation_details

TIMESHEET: dict[str, Any] = {
    "event_id": "tl-9001-v3",
    "module": "timesheets",
    "action": "updated",
    "modified_at": "2026-11-24T10:15:00Z",
    "data": {
        "id": "2447529000000090001",
        "project_id": "2447529000000057232",
        "task_id": "2447529000000061011",
        "log_date": "2026-11-20",
        "minutes": 150,
        "bill_status": "Billable",
        "approval_status": "Approved",
        "owner": {"id": "6120001", "name": "Asha Rao", "email": "asha@example.com"},
        "notes": "API review",
    },
}
AT = TIMESHEET["modified_at"]


def _errors(payload: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        event_adapter.validate_json(json.dumps(payload))
    return validation_details(caught.value)


def test_the_documented_example_validates_as_a_timesheet_event() -> None:
    event = event_adapter.validate_python(TIMESHEET)
    assert isinstance(event, TimesheetEvent)
    assert event.data.minutes == 150


def test_unknown_extra_fields_are_kept_as_custom_fields() -> None:
    payload = {**TIMESHEET, "data": {**TIMESHEET["data"], "cf_region": "EMEA"}}
    event = event_adapter.validate_python(payload)
    assert event.data.model_dump()["cf_region"] == "EMEA"


def test_integer_ids_become_strings_without_losing_digits() -> None:
    payload = {**TIMESHEET, "data": {**TIMESHEET["data"], "id": 2447529000000090001}}
    assert event_adapter.validate_python(payload).data.id == "2447529000000090001"


def test_an_optional_field_sent_empty_is_absent() -> None:
    # A general log filled from a webhook template: no task, no bug, no notes.
    blanks = {"task_id": "", "bug_id": "", "notes": ""}
    payload = {**TIMESHEET, "data": {**TIMESHEET["data"], **blanks}}
    event = event_adapter.validate_python(payload)
    assert (event.data.task_id, event.data.bug_id, event.data.notes) == (None, None, None)


def test_a_required_field_sent_empty_is_still_refused_with_its_path() -> None:
    errors = _errors({**TIMESHEET, "data": {**TIMESHEET["data"], "log_date": ""}})
    assert [e["path"] for e in errors] == ["data.log_date"]


def test_modified_at_is_normalised_to_utc() -> None:
    event = event_adapter.validate_python({**TIMESHEET, "modified_at": "2026-11-24T12:15:00+02:00"})
    assert event.modified_at.isoformat() == "2026-11-24T10:15:00+00:00"


def test_modified_at_without_zone_is_rejected_with_its_path() -> None:
    details = _errors({**TIMESHEET, "modified_at": "2026-11-24T10:15:00"})
    assert details[0]["path"] == "modified_at"


def test_missing_required_field_is_reported_with_its_path() -> None:
    data = {k: v for k, v in TIMESHEET["data"].items() if k != "minutes"}
    details = _errors({**TIMESHEET, "data": data})
    assert [d["path"] for d in details] == ["data.minutes"]


def test_nested_field_error_names_the_nested_path() -> None:
    data = {**TIMESHEET["data"], "owner": {"id": "1", "name": "A", "email": "not-an-email"}}
    assert [d["path"] for d in _errors({**TIMESHEET, "data": data})] == ["data.owner.email"]


def test_unknown_module_is_rejected_naming_the_modules() -> None:
    details = _errors({**TIMESHEET, "module": "invoices"})
    assert "projects" in details[0]["message"]


def test_negative_minutes_are_rejected() -> None:
    details = _errors({**TIMESHEET, "data": {**TIMESHEET["data"], "minutes": -5}})
    assert details[0]["path"] == "data.minutes"


def test_delete_needs_only_the_id_for_projects() -> None:
    event = event_adapter.validate_python(deleted("projects", "P1", at=AT))
    assert isinstance(event, DeletedEvent)


def test_delete_of_a_child_record_needs_its_project_id() -> None:
    details = _errors(deleted("tasks", "T1", at=AT))
    assert "project_id" in details[0]["message"]


def test_event_ids_may_not_contain_dots() -> None:
    details = _errors({**TIMESHEET, "event_id": "a.b"})
    assert details[0]["path"] == "event_id"


def test_queue_message_round_trips_through_json() -> None:
    queued = message(TIMESHEET, "i1", "e1")
    assert QueueMessage.model_validate_json(queued.model_dump_json()) == queued


def test_queue_message_headers_carry_event_id_and_module() -> None:
    queued = message(TIMESHEET, "i1", "e1")
    assert queued.headers()["event-id"] == "e1"
    assert queued.headers()["module"] == "timesheets"
