"""Portal REST records → webhook event data: the spellings of V2 and of older typed
clients, which billsync accepts beside V3's (the live V3 shapes are checked against
recorded answers in test_zoho_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import event_adapter
from schemas.envelope import ProjectEvent, TaskEvent, TimesheetEvent, UserEvent
from worker.portal.converters import (
    convert_bug,
    convert_milestone,
    convert_project,
    convert_task,
    convert_tasklist,
    convert_timesheet,
    convert_user,
    modified_at,
    pull_event,
    to_event_data,
)

VERSION = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
OWNER = {"zpuid": "6120001", "id": "700001", "name": "Asha Rao", "email": "asha@example.com"}

TYPED_PROJECT: dict[str, Any] = {
    "id": 2447529000000057232,
    "name": "Website rebuild",
    "status": {"name": "Active", "id": "1"},
    "currency_code": "EUR",
    "billing_type": "based_on_staff_hours",
    "rate": "95.50",
    "budget_value": "12000",
    "owner": OWNER,
    "custom_fields": {"Region": "EMEA"},
    "crm_id": "crm-42",
    "modified_time": "2026-11-24T10:15:00Z",
}
CLIENT = {"id": "c1", "name": "Acme GmbH", "email": "ap@acme.example", "currency_code": "EUR"}

TYPED_TASK: dict[str, Any] = {
    "id": "2447529000000061011",
    "name": "API review",
    "tasklist": {"id": "2447529000000060001", "name": "Backend"},
    "milestone_id": "2447529000000059001",
    "status": {"name": "Open", "id": "s1"},
    "billing_type": "Billable",
    "rate": "80",
    "owners": [OWNER],
    "custom_fields": [{"Effort": "M"}],
    "modified_time": "2026-11-24T10:15:00Z",
}
V2_TASK: dict[str, Any] = {
    "id": 2447529000000061012,
    "name": "Deploy",
    "tasklist_id": "2447529000000060001",
    "status": {"name": "Closed"},
    "billingtype": "Non Billable",
    "details": {"owners": [{"id": "700002", "name": "Ben Okoro", "email": "ben@example.com"}]},
    "last_modified_time_long": 1795515300000,
}

TYPED_LOG: dict[str, Any] = {
    "id": "2447529000000090001",
    "date": "2026-11-20",
    "log_hour": "2:30",
    "bill_status": "Billable",
    "approval_status": "Approved",
    "owner": OWNER,
    "module_detail": {"id": "2447529000000061011", "type": "task", "name": "API review"},
    "notes": "API review",
    "modified_time": "2026-11-24T10:15:00Z",
}


def _log(**changes: Any) -> dict[str, Any]:
    return {**TYPED_LOG, **changes}


# -- modified_at -----------------------------------------------------------------------


def test_modified_at_reads_iso_modified_time_with_z() -> None:
    assert modified_at({"modified_time": "2026-11-24T10:15:00Z"}) == VERSION


def test_modified_at_keeps_an_iso_offset_as_the_same_instant() -> None:
    assert modified_at({"modified_time": "2026-11-24T12:15:00+02:00"}) == VERSION


def test_modified_at_reads_v2_last_modified_time_long_milliseconds() -> None:
    assert modified_at({"last_modified_time_long": 1795515300000}) == VERSION


def test_modified_at_is_none_without_a_version() -> None:
    assert modified_at({"id": "1"}) is None


def test_modified_at_prefers_the_v2_long_over_a_v2_display_date() -> None:
    record = {"last_modified_time": "11-24-2026", "last_modified_time_long": 1795515300000}
    assert modified_at(record) == VERSION


# -- projects --------------------------------------------------------------------------


def test_a_project_takes_its_first_client_as_primary_client() -> None:
    data = to_event_data(
        convert_project, TYPED_PROJECT, clients=[CLIENT, {"id": "c2", "name": "Other"}]
    )
    assert data["primary_client"]["id"] == "c1"
    assert data["primary_client"]["name"] == "Acme GmbH"


def test_a_project_without_clients_has_no_primary_client() -> None:
    data = to_event_data(convert_project, TYPED_PROJECT, clients=[])
    assert data.get("primary_client") is None


def test_a_project_status_name_becomes_the_lowercase_contract_value() -> None:
    assert to_event_data(convert_project, TYPED_PROJECT, clients=[])["status"] == "active"


def test_a_plain_string_project_status_is_accepted() -> None:
    data = to_event_data(convert_project, {**TYPED_PROJECT, "status": "Archived"}, clients=[])
    assert data["status"] == "archived"


def test_an_unknown_project_status_is_left_absent() -> None:
    data = to_event_data(
        convert_project, {**TYPED_PROJECT, "status": {"name": "On Hold"}}, clients=[]
    )
    assert "status" not in data


def test_custom_fields_as_a_list_of_one_key_dicts_become_one_dict() -> None:
    record = {**TYPED_PROJECT, "custom_fields": [{"Region": "EMEA"}, {"PO": "4711"}]}
    data = to_event_data(convert_project, record, clients=[])
    assert data["custom_fields"] == {"Region": "EMEA", "PO": "4711"}


def test_custom_fields_as_a_dict_are_kept() -> None:
    assert to_event_data(convert_project, TYPED_PROJECT, clients=[])["custom_fields"] == {
        "Region": "EMEA"
    }


def test_the_project_crm_id_goes_onto_its_primary_client() -> None:
    data = to_event_data(convert_project, TYPED_PROJECT, clients=[CLIENT])
    assert data["primary_client"]["crm_id"] == "crm-42"


def test_the_client_own_crm_id_wins_over_the_project_crm_id() -> None:
    data = to_event_data(convert_project, TYPED_PROJECT, clients=[{**CLIENT, "crm_id": "crm-own"}])
    assert data["primary_client"]["crm_id"] == "crm-own"


def test_a_project_id_becomes_a_string() -> None:
    assert to_event_data(convert_project, TYPED_PROJECT, clients=[])["id"] == "2447529000000057232"


def test_the_project_owner_is_named_by_zpuid() -> None:
    owner = to_event_data(convert_project, TYPED_PROJECT, clients=[])["owner"]
    assert owner == {"id": "6120001", "name": "Asha Rao", "email": "asha@example.com"}


def test_a_converted_project_validates_as_a_project_event() -> None:
    data = to_event_data(convert_project, TYPED_PROJECT, clients=[CLIENT])
    event = event_adapter.validate_python(pull_event("projects", data, VERSION))
    assert isinstance(event, ProjectEvent)
    assert event.data.primary_client is not None
    assert event.data.primary_client.crm_id == "crm-42"


# -- tasks -----------------------------------------------------------------------------


def test_a_v3_task_takes_its_tasklist_id_from_the_tasklist_object() -> None:
    data = to_event_data(convert_task, TYPED_TASK, project_id="9")
    assert data["tasklist_id"] == "2447529000000060001"


def test_v3_task_owners_are_named_by_zpuid() -> None:
    data = to_event_data(convert_task, TYPED_TASK, project_id="9")
    assert [o["id"] for o in data["owners"]] == ["6120001"]


def test_a_v3_task_status_object_becomes_its_name() -> None:
    assert to_event_data(convert_task, TYPED_TASK, project_id="9")["status"] == "Open"


def test_a_task_carries_the_project_id_it_was_listed_under() -> None:
    assert to_event_data(convert_task, TYPED_TASK, project_id="9")["project_id"] == "9"


def test_a_v2_task_billingtype_becomes_billing_type() -> None:
    assert to_event_data(convert_task, V2_TASK, project_id="9")["billing_type"] == "Non Billable"


def test_v2_task_owners_come_from_details_owners() -> None:
    data = to_event_data(convert_task, V2_TASK, project_id="9")
    assert data["owners"] == [{"id": "700002", "name": "Ben Okoro", "email": "ben@example.com"}]


def test_a_v2_task_takes_its_tasklist_id_from_tasklist_id() -> None:
    assert (
        to_event_data(convert_task, V2_TASK, project_id="9")["tasklist_id"] == "2447529000000060001"
    )


@pytest.mark.parametrize("record", [TYPED_TASK, V2_TASK], ids=["v3", "v2"])
def test_a_converted_task_validates_as_a_task_event(record: dict[str, Any]) -> None:
    data = to_event_data(convert_task, record, project_id="9")
    version = modified_at(record)
    assert version == VERSION
    event = event_adapter.validate_python(pull_event("tasks", data, version))
    assert isinstance(event, TaskEvent)


# -- timesheets ------------------------------------------------------------------------


def test_a_task_log_gets_task_id_and_no_bug_id() -> None:
    data = to_event_data(convert_timesheet, TYPED_LOG, project_id="9")
    assert data["task_id"] == "2447529000000061011"
    assert "bug_id" not in data


def test_a_bug_log_gets_bug_id_and_no_task_id() -> None:
    data = to_event_data(convert_timesheet, _log(module_detail={"id": "b7", "type": "bug"}), "9")
    assert data["bug_id"] == "b7"
    assert "task_id" not in data


def test_a_general_log_gets_neither_task_id_nor_bug_id() -> None:
    data = to_event_data(
        convert_timesheet, _log(module_detail={"id": "g1", "type": "general"}), "9"
    )
    assert "task_id" not in data
    assert "bug_id" not in data


def test_log_hour_h_mm_becomes_minutes() -> None:
    assert to_event_data(convert_timesheet, TYPED_LOG, project_id="9")["minutes"] == 150


def test_total_minutes_is_preferred_over_log_hour() -> None:
    data = to_event_data(convert_timesheet, _log(total_minutes=95, log_hour="2:30"), project_id="9")
    assert data["minutes"] == 95


def test_total_minutes_of_zero_is_kept() -> None:
    data = to_event_data(convert_timesheet, _log(total_minutes=0, log_hour="2:30"), project_id="9")
    assert data["minutes"] == 0


def test_a_v2_log_date_mm_dd_yyyy_becomes_iso() -> None:
    data = to_event_data(convert_timesheet, _log(date="11-20-2026"), project_id="9")
    assert data["log_date"] == "2026-11-20"


def test_an_iso_log_date_is_kept() -> None:
    assert to_event_data(convert_timesheet, TYPED_LOG, project_id="9")["log_date"] == "2026-11-20"


def test_a_converted_log_validates_as_a_timesheet_event() -> None:
    data = to_event_data(convert_timesheet, _log(date="11-20-2026"), project_id="9")
    event = event_adapter.validate_python(pull_event("timesheets", data, VERSION))
    assert isinstance(event, TimesheetEvent)
    assert event.data.minutes == 150
    assert event.data.log_date.isoformat() == "2026-11-20"
    assert event.data.owner.id == "6120001"


@pytest.mark.parametrize("kind", ["task", "bug"])
def test_a_flattened_v2_log_keeps_its_task_or_bug_id(kind: str) -> None:
    log = _log(module_detail={"type": kind}, **{kind: {"id": "77", "name": "x"}})
    data = to_event_data(convert_timesheet, log, project_id="9")
    assert data[f"{kind}_id"] == "77"


# -- users -----------------------------------------------------------------------------


def test_a_user_role_becomes_the_lowercase_contract_value() -> None:
    record = {**OWNER, "role": "Employee"}
    assert to_event_data(convert_user, record)["role"] == "employee"


def test_a_user_role_object_becomes_the_lowercase_contract_value() -> None:
    record = {**OWNER, "role": {"id": "r1", "name": "Manager"}}
    assert to_event_data(convert_user, record)["role"] == "manager"


def test_an_unknown_user_role_is_left_absent() -> None:
    assert "role" not in to_event_data(convert_user, {**OWNER, "role": "Portal Owner"})


def test_a_user_is_named_by_zpuid() -> None:
    assert to_event_data(convert_user, OWNER)["id"] == "6120001"


def test_a_user_active_flag_given_as_text_becomes_a_bool() -> None:
    assert to_event_data(convert_user, {**OWNER, "active": "false"})["active"] is False


def test_a_converted_user_validates_as_a_user_event() -> None:
    data = to_event_data(convert_user, {**OWNER, "role": "Employee", "active": True})
    event = event_adapter.validate_python(pull_event("users", data, VERSION))
    assert isinstance(event, UserEvent)
    assert event.data.role == "employee"


# -- other modules ---------------------------------------------------------------------


def test_a_converted_milestone_validates_with_v2_dates() -> None:
    record = {
        "id": "m1",
        "name": "Beta",
        "status": "notcompleted",
        "start_date": "11-01-2026",
        "end_date": "11-30-2026",
    }
    data = to_event_data(convert_milestone, record, project_id="9")
    assert (data["start_date"], data["end_date"]) == ("2026-11-01", "2026-11-30")
    event_adapter.validate_python(pull_event("milestones", data, VERSION))


def test_a_tasklist_takes_its_milestone_id_from_the_milestone_object() -> None:
    record = {"id": "tl1", "name": "Backend", "milestone": {"id": 59001}}
    data = to_event_data(convert_tasklist, record, project_id="9")
    assert data["milestone_id"] == "59001"
    event_adapter.validate_python(pull_event("tasklists", data, VERSION))


def test_a_bug_takes_status_and_severity_from_their_type() -> None:
    record = {
        "id": "b1",
        "title": "Crash",
        "status": {"type": "Open"},
        "severity": {"type": "Major"},
        "assignee": OWNER,
    }
    data = to_event_data(convert_bug, record, project_id="9")
    assert (data["status"], data["severity"]) == ("Open", "Major")
    event_adapter.validate_python(pull_event("bugs", data, VERSION))


def test_pull_event_writes_modified_at_in_utc_with_z() -> None:
    event = pull_event("users", {"id": "1"}, VERSION)
    assert event["modified_at"] == "2026-11-24T10:15:00Z"
    assert event["action"] == "updated"
