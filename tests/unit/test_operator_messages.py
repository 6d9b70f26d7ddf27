"""What people read when something is wrong says what and where, in words: no
traceback, no Python syntax, the field or record named."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import ValidationError

from schemas import event_adapter, events_adapter
from webhook_gateway.errors import validation_details
from worker.billing.invoices import STAFF_HOURS, TASK_HOURS, RateMissing, _Pricing
from worker.cli import cli
from worker.db import Organization, Project, StaffUser, Task, Timesheet
from worker.db.tenancy import BlankName

EVENT = {
    "event_id": "e-1",
    "module": "nosuch",
    "action": "created",
    "modified_at": "2026-11-24T10:15:00Z",
    "data": {"id": "P1"},
}


def billsync(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


# -- settings and CLI input ------------------------------------------------------------


def test_a_bad_setting_is_a_readable_message_and_exit_2() -> None:
    result = billsync("db", "upgrade", env={"BILLSYNC_LOG_LEVEL": "verbose"})

    assert result.exit_code == 2
    assert "BILLSYNC_LOG_LEVEL: must be one of DEBUG, INFO" in result.output
    assert "got 'verbose'" in result.output


def test_a_misspelled_variable_is_warned_about_at_start() -> None:
    result = billsync("zoho", "key", env={"BILLSYNC_DATABSE_URL": "postgresql://db/x"})

    assert result.exit_code == 0
    assert "did you mean BILLSYNC_DATABASE_URL?" in result.stderr


def test_webhook_send_with_a_secret_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text("{}")

    result = billsync(
        "webhook", "send", str(event_file), "--url", "http://127.0.0.1:9/x",
        "--secret", "whsec_!!notbase64",
    )  # fmt: skip

    assert result.exit_code == 2
    assert "Invalid value for --secret: not a signing secret" in result.output
    assert not isinstance(result.exception, ValueError)


def test_org_create_refuses_a_blank_name() -> None:
    result = billsync("org", "create", "  ")

    assert result.exit_code == 2
    assert "an organization needs a name that is not blank" in result.output


def test_an_organization_cannot_have_a_blank_name() -> None:
    with pytest.raises(BlankName):
        Organization(id="o-1", name="")


# -- API answers ---------------------------------------------------------------------


def test_an_unknown_module_is_reported_at_the_module_field() -> None:
    with pytest.raises(ValidationError) as raised:
        event_adapter.validate_python(EVENT)

    assert [d["path"] for d in validation_details(raised.value)] == ["module"]


def test_an_unknown_module_in_an_array_is_reported_at_that_events_module() -> None:
    with pytest.raises(ValidationError) as raised:
        events_adapter.validate_python([EVENT])

    assert [d["path"] for d in validation_details(raised.value)] == ["0.module"]


# -- billing ---------------------------------------------------------------------------

PROJECT = Project(id=7, name="Website redesign", rate=None, invoice_rate=None)


def _missing_rate(
    billing_type: str,
    tasks: dict[int, Task] | None = None,
    staff: dict[int, StaffUser] | None = None,
) -> str:
    """The RateMissing message for a log of task 3 by staff user 5 on PROJECT."""
    pricing = _Pricing(PROJECT, billing_type, tasks or {}, {}, staff or {})
    with pytest.raises(RateMissing) as raised:
        pricing.rate(Timesheet(id=1, task_id=3, staff_id=5))
    return str(raised.value)


def test_a_missing_project_rate_is_a_sentence_naming_the_project() -> None:
    assert _missing_rate("based_on_project_hours") == (
        "No rate for project “Website redesign” (id 7): "
        "set one with PATCH /api/v1/projects/7 to bill this time."
    )


def test_a_missing_task_rate_names_the_task_and_its_project() -> None:
    task = Task(id=3, name="Wireframes", rate=None, invoice_rate=None)

    assert _missing_rate(TASK_HOURS, tasks={3: task}) == (
        "No rate for task “Wireframes” (id 3) of project “Website redesign” (id 7), nor for "
        "the project: set one with PATCH /api/v1/tasks/3 or PATCH /api/v1/projects/7 to bill "
        "this time."
    )


def test_a_missing_staff_rate_names_the_staff_user_and_the_project() -> None:
    staff = StaffUser(id=5, name="Asha Rao", rate=None)

    assert _missing_rate(STAFF_HOURS, staff={5: staff}) == (
        "No rate for staff user “Asha Rao” (id 5) on project “Website redesign” (id 7): "
        "set one with PATCH /api/v1/staff/5 to bill this time."
    )
