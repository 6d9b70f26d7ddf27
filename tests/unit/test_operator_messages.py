"""What people read when something is wrong says what and where, in words: no
traceback, no Python syntax, the field or record named."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pydantic import ValidationError

from schemas import event_adapter, events_adapter
from tests.events import event
from webhook_gateway.billing import rate_missing_message
from webhook_gateway.errors import ApiError, validation_details
from webhook_gateway.lifecycle import _conflicts as lifecycle_refusals
from worker.billing.pricing import STAFF_HOURS, TASK_HOURS, Pricing, RateMissing
from worker.cli import cli
from worker.db import Organization, Project, StaffUser, Task, Timesheet
from worker.db.tenancy import BlankName
from worker.integrations import SourceMissing

EVENT = event("nosuch", {"id": "P1"}, action="created", at="2026-11-24T10:15:00Z", event_id="e-1")


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


def _rate_missing(
    billing_type: str,
    tasks: dict[int, Task] | None = None,
    staff: dict[int, StaffUser] | None = None,
) -> RateMissing:
    """The RateMissing for a log of task 3 by staff user 5 on PROJECT."""
    pricing = Pricing(PROJECT, billing_type, tasks or {}, {}, staff or {})
    with pytest.raises(RateMissing) as raised:
        pricing.rate(Timesheet(id=1, task_id=3, staff_id=5))
    return raised.value


def _missing_rate(
    billing_type: str,
    tasks: dict[int, Task] | None = None,
    staff: dict[int, StaffUser] | None = None,
) -> str:
    """The API's message for a log of task 3 by staff user 5 on PROJECT."""
    return rate_missing_message(_rate_missing(billing_type, tasks, staff))


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


def test_the_domain_says_where_a_rate_is_missing_without_an_api_route() -> None:
    """The CLI shows it as is; the gateway words the fix as API calls (above)."""
    task = Task(id=3, name="Wireframes", rate=None, invoice_rate=None)

    missing = _rate_missing(TASK_HOURS, tasks={3: task})

    assert missing.holders == (("task", 3), ("project", 7))
    assert str(missing) == (
        "No rate for task “Wireframes” (id 3) of project “Website redesign” (id 7), nor for "
        "the project: set one for task 3 or project 7 to bill this time."
    )


def test_a_staff_user_not_synced_yet_has_nowhere_to_set_a_rate() -> None:
    missing = _rate_missing(STAFF_HOURS)

    assert missing.holders == ()
    assert (
        rate_missing_message(missing)
        == str(missing)
        == (
            "No rate for the staff user who logged time on project “Website redesign” (id 7): "
            "they are not synced yet; sync the portal's users, then set their rate."
        )
    )


def test_an_integration_without_a_pull_source_is_told_how_to_give_it_one() -> None:
    with pytest.raises(ApiError) as raised, lifecycle_refusals():
        raise SourceMissing("i-1")

    assert (raised.value.status, raised.value.code) == (409, "no_pull_source")
    assert raised.value.message == (
        "integration i-1 has no pull source; set one with "
        "PATCH /api/v1/integrations/<id> {'source': …}"
    )
    assert "PATCH" not in str(SourceMissing("i-1"))
