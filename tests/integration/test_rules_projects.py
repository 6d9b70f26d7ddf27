"""Projects, their primary customers, and records that live under projects."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.events import CLIENT, bug, deleted, milestone, project, task, tasklist, timesheet
from tests.integration.sync_harness import Sync
from worker.db import Project, Task, Timesheet

pytestmark = pytest.mark.integration

LATER = "2026-11-24T11:00:00Z"


def test_project_without_primary_customer_is_refused_as_no_primary_customer(sync: Sync) -> None:
    assert sync.apply(project(client=None)) == ["refused"]
    assert sync.row(Project, "P1") is None
    assert sync.errors() == [("projects", "P1", "no_primary_customer", 1)]


def test_primary_customer_with_no_match_becomes_a_new_linked_customer(sync: Sync) -> None:
    sync.apply(project())
    [customer] = sync.customers()
    assert (customer.name, customer.source_id, customer.currency_code) == ("Globex", "C1", "USD")
    assert sync.row(Project, "P1").customer_id == customer.id


def test_a_customer_already_linked_is_updated_not_duplicated(sync: Sync) -> None:
    sync.apply(project())
    sync.apply(project("P2", client={**CLIENT, "name": "Globex Corp"}, at=LATER))
    [customer] = sync.customers()
    assert customer.name == "Globex Corp"


def test_overwrite_replaces_an_existing_customer_matched_by_email_and_links_it(sync: Sync) -> None:
    existing = sync.add_customer(name="Old name", email="AP@globex.example", currency_code="USD")
    sync.apply(project())
    [customer] = sync.customers()
    assert (customer.id, customer.name, customer.source_id) == (existing, "Globex", "C1")
    assert sync.row(Project, "P1").customer_id == existing


def test_a_customer_without_email_is_matched_by_name(sync: Sync) -> None:
    existing = sync.add_customer(name="globex", currency_code="USD")
    sync.apply(project(client={**CLIENT, "email": None}))
    assert [c.id for c in sync.customers()] == [existing]


def test_clone_creates_a_new_customer_and_keeps_the_existing_one_untouched(
    connect_with: Callable[..., Sync],
) -> None:
    sync = connect_with(customer_duplication="clone")
    existing = sync.add_customer(name="Old name", email="ap@globex.example", currency_code="USD")
    sync.apply(project())
    old, new = sync.customers()
    assert (old.id, old.name, old.source_id) == (existing, "Old name", None)
    assert (new.name, new.source_id) == ("Globex", "C1")
    assert sync.row(Project, "P1").customer_id == new.id


def test_a_matched_customer_with_another_currency_is_currency_mismatch_and_nothing_changes(
    sync: Sync,
) -> None:
    sync.add_customer(name="Old name", email="ap@globex.example", currency_code="EUR")
    assert sync.apply(project()) == ["refused"]
    [customer] = sync.customers()
    assert (customer.name, customer.currency_code, customer.source_id) == ("Old name", "EUR", None)
    assert sync.row(Project, "P1") is None
    assert sync.errors() == [("projects", "P1", "currency_mismatch", 1)]


def test_a_crm_id_matches_first_and_its_details_win_over_clone(
    connect_with: Callable[..., Sync],
) -> None:
    sync = connect_with(customer_duplication="clone")
    existing = sync.add_customer(name="Globex (CRM)", currency_code="USD", crm_id="crm-9")
    sync.apply(project(client={**CLIENT, "email": "new@globex.example", "crm_id": "crm-9"}))
    [customer] = sync.customers()
    assert (customer.id, customer.email, customer.source_id) == (
        existing,
        "new@globex.example",
        "C1",
    )


def test_a_project_with_a_crm_id_adopts_the_local_project_with_that_crm_id(
    sync: Sync, client, org
) -> None:
    customer_id = sync.add_customer(name="Globex", currency_code="USD")
    local = client.post(
        "/api/v1/projects",
        json={"name": "Local", "customer_id": customer_id, "crm_id": "crm-p"},
        headers=org.auth(),
    ).get_json()
    sync.apply(project(crm_id="crm-p"))
    adopted = sync.row(Project, "P1")
    assert (adopted.id, adopted.name, adopted.standalone) == (local["id"], "Project P1", False)


@pytest.mark.parametrize(
    "child",
    [milestone("M1"), tasklist("L1"), task("T1"), bug("B1")],
    ids=["milestone", "tasklist", "task", "bug"],
)
def test_a_record_under_an_unsynced_project_is_related_project_missing(
    sync: Sync, child: dict
) -> None:
    assert sync.apply(child) == ["refused"]
    assert sync.errors() == [(child["module"], child["data"]["id"], "related_project_missing", 1)]


def test_a_refused_record_heals_when_its_project_arrives_and_its_error_is_resolved(
    sync: Sync,
) -> None:
    sync.apply(task("T1"))
    sync.apply(project())
    assert sync.row(Task, "T1").project_id == sync.row(Project, "P1").id
    assert sync.errors() == []
    assert sync.errors(resolved=True) == [("tasks", "T1", "related_project_missing", 1)]


def test_a_refused_project_heals_its_children_when_it_gets_a_primary_customer(sync: Sync) -> None:
    sync.apply(project(client=None), task("T1"))
    sync.apply(project(at=LATER))
    assert sync.live(Task) == {"T1"}
    assert sync.errors() == []


def test_a_repeated_refusal_bumps_the_count_instead_of_adding_rows(sync: Sync) -> None:
    sync.apply(task("T1"))
    sync.apply(task("T1", at=LATER))
    assert sync.errors() == [("tasks", "T1", "related_project_missing", 2)]


def test_deleting_a_project_withdraws_its_unbilled_children_but_never_invoiced_time(
    connect_with: Callable[..., Sync],
) -> None:
    sync = connect_with(invoiced_before="2026-11-01")
    sync.apply(
        project(),
        task("T1"),
        timesheet("L-old", task_id="T1", log_date="2026-10-15"),
        timesheet("L-new", task_id="T1", log_date="2026-11-15"),
    )
    sync.apply(deleted("projects", "P1", at=LATER))
    assert sync.live(Project) == set()
    assert sync.live(Task) == set()
    assert sync.live(Timesheet) == {"L-old"}


def test_the_field_map_puts_portal_custom_fields_into_the_invoicing_fields(
    connect_with: Callable[..., Sync],
) -> None:
    mapping = {"source": "Region", "source_type": "text", "target": "region", "target_type": "text"}
    sync = connect_with(field_map={"projects": [mapping], "tasks": [mapping]})
    sync.apply(
        project(custom_fields={"Region": "EMEA", "Internal": "x"}),
        task("T1", custom_fields={"Region": "APAC"}),
    )
    assert sync.row(Project, "P1").custom_fields == {"region": "EMEA"}
    assert sync.row(Task, "T1").custom_fields == {"region": "APAC"}
