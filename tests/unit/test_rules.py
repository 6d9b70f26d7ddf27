"""The sync rules as pure decisions, without a database."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.payloads import PrimaryClient, TimesheetData
from worker.sync.rules.customers import CustomerDecision, CustomerView, decide_customer, pick_match
from worker.sync.rules.field_map import mapped_custom_fields
from worker.sync.rules.reasons import CURRENCY_MISMATCH, REASONS
from worker.sync.rules.staff import staff_kind
from worker.sync.rules.timesheets import (
    ProjectState,
    TimesheetFacts,
    billing_status,
    decide_timesheet,
)

CLIENT = PrimaryClient(id="C1", name="Globex", email="ap@globex.example", currency_code="USD")


def view(
    cid: int, name: str = "Globex", email: str | None = None, currency: str = "USD"
) -> CustomerView:
    return CustomerView(cid, name, email, currency)


def test_every_reason_has_a_message_and_a_resolution() -> None:
    assert all(r.message and r.resolution for r in REASONS.values())


def test_an_email_match_beats_a_name_match() -> None:
    found = pick_match(CLIENT, [view(1, "Globex"), view(2, "Other", "AP@globex.example")])
    assert found is not None and found.id == 2


def test_no_match_creates_a_customer() -> None:
    assert decide_customer(CLIENT, "overwrite", linked=None, match=None) == CustomerDecision(
        "create"
    )


def test_a_linked_customer_is_updated_whatever_the_preference() -> None:
    decision = decide_customer(CLIENT, "clone", linked=view(7), match=None)
    assert decision == CustomerDecision("update", 7)


@pytest.mark.parametrize(
    ("preference", "expected"),
    [
        ("overwrite", CustomerDecision("overwrite", 3)),
        ("clone", CustomerDecision("clone")),
    ],
)
def test_a_match_follows_the_duplication_preference(
    preference: str, expected: CustomerDecision
) -> None:
    assert decide_customer(CLIENT, preference, linked=None, match=view(3)) == expected


def test_a_crm_client_overwrites_even_under_clone() -> None:
    crm = CLIENT.model_copy(update={"crm_id": "crm-1"})
    assert decide_customer(crm, "clone", linked=None, match=view(3)) == CustomerDecision(
        "overwrite", 3
    )


def test_another_currency_is_a_currency_mismatch() -> None:
    assert (
        decide_customer(CLIENT, "overwrite", linked=None, match=view(3, currency="eur"))
        is CURRENCY_MISMATCH
    )


def test_the_same_currency_in_another_case_is_no_mismatch() -> None:
    decision = decide_customer(CLIENT, "overwrite", linked=None, match=view(3, currency="usd"))
    assert decision == CustomerDecision("overwrite", 3)


def log(**fields: object) -> TimesheetData:
    base: dict[str, object] = {
        "id": "L1",
        "project_id": "P1",
        "log_date": "2026-11-20",
        "minutes": 60,
        "bill_status": "Billable",
        "approval_status": "Approved",
        "owner": {"id": "U1", "name": "A", "email": "a@example.com"},
    }
    return TimesheetData.model_validate({**base, **fields})


FACTS = TimesheetFacts(
    module_selected=True, project=ProjectState.SYNCED, task_synced=True, bug_synced=True
)


def test_a_billable_approved_log_of_a_synced_project_syncs() -> None:
    assert decide_timesheet(log(), FACTS) is None


@pytest.mark.parametrize(
    ("fields", "facts", "reason"),
    [
        ({}, TimesheetFacts(False, ProjectState.SYNCED, True, True), "module_not_selected"),
        ({"bill_status": "Non Billable"}, FACTS, "not_billable"),
        ({"approval_status": "Pending"}, FACTS, "not_approved"),
        (
            {},
            TimesheetFacts(True, ProjectState.NO_PRIMARY_CUSTOMER, True, True),
            "project_without_primary_customer",
        ),
        ({}, TimesheetFacts(True, ProjectState.MISSING, True, True), "related_project_missing"),
        (
            {"task_id": "T1"},
            TimesheetFacts(True, ProjectState.SYNCED, False, True),
            "related_task_missing",
        ),
        (
            {"bug_id": "B1"},
            TimesheetFacts(True, ProjectState.SYNCED, True, False),
            "related_bug_missing",
        ),
    ],
)
def test_each_refusal_reason(fields: dict[str, object], facts: TimesheetFacts, reason: str) -> None:
    refused = decide_timesheet(log(**fields), facts)
    assert refused is not None and refused.code == reason


def test_a_log_of_a_deleted_project_is_not_refused_for_its_task() -> None:
    facts = TimesheetFacts(True, ProjectState.DELETED, False, False)
    assert decide_timesheet(log(task_id="T1"), facts) is None


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        (date(2026, 10, 31), "invoiced"),
        (date(2026, 11, 1), "unbilled"),
        (date(2026, 11, 2), "unbilled"),
    ],
)
def test_billing_status_against_the_invoiced_before_date(logged: date, expected: str) -> None:
    assert billing_status(logged, date(2026, 11, 1)) == expected


def test_without_a_date_everything_is_unbilled() -> None:
    assert billing_status(date(1999, 1, 1), None) == "unbilled"


def test_staff_kind_matches_emails_case_insensitively() -> None:
    assert staff_kind("Asha@Example.com ", {"asha@example.com"}) == "project_staff"
    assert staff_kind("ben@example.com", {"asha@example.com"}) == "inactive_timesheet_staff"


def test_without_a_map_custom_fields_are_kept_as_they_came() -> None:
    assert mapped_custom_fields({"Region": "EMEA"}, None) == {"Region": "EMEA"}


def test_with_a_map_only_mapped_fields_are_kept_under_their_new_names() -> None:
    mapping = [{"source": "Region", "target": "region"}]
    assert mapped_custom_fields({"Region": "EMEA", "X": 1}, mapping) == {"region": "EMEA"}
