"""Billing synced time on PostgreSQL: methods, groupings, scope, rounding, concurrency, void.

Every expected total is computed by hand in the test's comment.
"""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from tests.conftest import Org
from tests.events import ASHA, milestone, project, task, tasklist, timesheet
from tests.integration.sync_harness import Sync
from worker.billing.invoices import (
    InvoiceRequest,
    NothingToInvoice,
    Scope,
    create_invoice,
    invoice_view,
    round_money,
    unbilled_summary,
    void_invoice,
)
from worker.billing.pricing import RateMissing
from worker.db import Milestone, Project, StaffUser, Task, Tasklist, Timesheet

BEN = {"id": "U2", "name": "Ben Okoro", "email": "ben@example.com"}
LATER = "2026-11-25T10:00:00Z"


def invoice(sync: Sync, *, grouping: str = "single", **request: Any) -> dict[str, Any]:
    with sync.sessions.begin() as session:
        created = create_invoice(
            session,
            sync.organization_id,
            InvoiceRequest(project_id=sync.row(Project, "P1").id, grouping=grouping, **request),
        )
        return invoice_view(created).model_dump(mode="json")


def billing_status(sync: Sync, *source_ids: str) -> list[str]:
    return [sync.row(Timesheet, s).billing_status for s in source_ids]


def test_project_hours_bill_every_log_at_the_project_rate(sync: Sync) -> None:
    sync.apply(
        project(billing_type="based_on_project_hours", rate="100"),
        timesheet("L1", minutes=90),
        timesheet("L2", minutes=45),
    )

    made = invoice(sync)

    # (90 + 45) min = 2.25 h × 100 = 225.00
    assert (made["total"], made["lines"][0]["hours"]) == ("225.00", "2.25")
    assert made["number"] == "INV-000001"
    assert billing_status(sync, "L1", "L2") == ["invoiced", "invoiced"]


def test_task_hours_bill_each_task_at_its_rate_and_general_time_at_the_project_rate(
    sync: Sync,
) -> None:
    sync.apply(
        project(billing_type="based_on_task_hours", rate="100"),
        task("T1", rate="80"),
        task("T2", rate="50"),
        timesheet("L1", task_id="T1", minutes=90),
        timesheet("L2", task_id="T2", minutes=30),
        timesheet("L3", minutes=60),
    )

    made = invoice(sync, grouping="task")

    # T1 1.5 h × 80 = 120; T2 0.5 h × 50 = 25; general 1 h × 100 = 100; total 245
    amounts = sorted(line["amount"] for line in made["lines"])
    assert amounts == ["100.00", "120.00", "25.00"]
    assert made["total"] == "245.00"


def test_staff_hours_bill_each_user_at_the_rate_set_on_the_invoicing_side(sync: Sync) -> None:
    sync.apply(
        project(billing_type="based_on_staff_hours"),
        timesheet("L1", minutes=30),
        timesheet("L2", minutes=30, owner=BEN),
    )
    with sync.sessions.begin() as session:
        session.execute(update(StaffUser).where(StaffUser.email == ASHA["email"]).values(rate=120))
        session.execute(update(StaffUser).where(StaffUser.email == BEN["email"]).values(rate=90))

    made = invoice(sync, grouping="staff")

    # Asha 0.5 h × 120 = 60; Ben 0.5 h × 90 = 45; total 105
    assert {line["description"]: line["amount"] for line in made["lines"]} == {
        "Asha Rao": "60.00",
        "Ben Okoro": "45.00",
    }
    assert made["total"] == "105.00"


def test_time_without_a_rate_is_refused_naming_what_needs_one(sync: Sync) -> None:
    sync.apply(project(billing_type="based_on_staff_hours"), timesheet("L1"))

    with pytest.raises(RateMissing, match="staff user"):
        invoice(sync)
    assert billing_status(sync, "L1") == ["unbilled"]


def test_a_fixed_cost_project_invoices_its_amount_or_a_chosen_part_and_no_hours(
    sync: Sync,
) -> None:
    sync.apply(project(billing_type="fixed_cost_for_project", budget_value="5000"), timesheet("L1"))

    whole = invoice(sync)
    part = invoice(sync, fixed_amount=Decimal("1250.505"))

    assert (whole["total"], part["total"]) == ("5000.00", "1250.51")  # half-up to cents
    assert whole["lines"][0]["timesheet_ids"] == []
    assert billing_status(sync, "L1") == ["unbilled"]


def test_each_grouping_makes_the_lines_it_names(sync: Sync) -> None:
    sync.apply(
        project(rate="60"),
        task("T1"),
        task("T2"),
        timesheet("L1", task_id="T1"),
        timesheet("L2", task_id="T1", owner=BEN),
        timesheet("L3", task_id="T2"),
    )
    counts = {}
    for grouping in ("single", "task", "staff", "task_staff", "timesheet"):
        with sync.sessions.begin() as session:  # price the same time five ways, then undo
            made = create_invoice(
                session,
                sync.organization_id,
                InvoiceRequest(project_id=sync.row(Project, "P1").id, grouping=grouping),
            )
            counts[grouping] = (len(made.lines), made.total)
            session.rollback()

    # 3 logs of 1 h at 60: total 180 however it is grouped
    assert {g: n for g, (n, _) in counts.items()} == {
        "single": 1,
        "task": 2,
        "staff": 2,
        "task_staff": 3,
        "timesheet": 3,
    }
    assert {total for _, total in counts.values()} == {Decimal("180")}


def test_amounts_round_half_up_to_the_currencys_minor_unit() -> None:
    # 10 min at 33.333/h = 5.5555 → USD 5.56, JPY 6, KWD 5.556
    amount = Decimal(10) * Decimal("33.333") / Decimal(60)
    assert [round_money(amount, c) for c in ("USD", "JPY", "KWD")] == [
        Decimal("5.56"),
        Decimal("6"),
        Decimal("5.556"),
    ]


def test_scope_by_task_milestone_and_task_list_and_by_date(sync: Sync) -> None:
    sync.apply(
        project(rate="60"),
        milestone("M1"),
        tasklist("TL1"),
        task("T1", milestone_id="M1"),
        task("T2", tasklist_id="TL1"),
        task("T3"),
        timesheet("L1", task_id="T1"),
        timesheet("L2", task_id="T2"),
        timesheet("L3", task_id="T3", log_date="2026-11-10"),
        timesheet("L4", task_id="T3", log_date="2026-11-20"),
    )

    invoice(sync, scope=Scope(milestone_ids=(sync.row(Milestone, "M1").id,)))
    invoice(sync, scope=Scope(tasklist_ids=(sync.row(Tasklist, "TL1").id,)))
    by_date = invoice(
        sync,
        scope=Scope(task_ids=(sync.row(Task, "T3").id,), date_to=date.fromisoformat("2026-11-15")),
    )

    assert billing_status(sync, "L1", "L2", "L3", "L4") == ["invoiced"] * 3 + ["unbilled"]
    assert by_date["lines"][0]["timesheet_ids"] == [sync.row(Timesheet, "L3").id]


def test_invoiced_time_is_not_billed_again(sync: Sync) -> None:
    sync.apply(project(rate="60"), timesheet("L1"))
    invoice(sync)

    with pytest.raises(NothingToInvoice):
        invoice(sync)


def test_two_invoices_at_once_never_share_a_timesheet(sync: Sync) -> None:
    sync.apply(project(rate="60"), *(timesheet(f"L{n}") for n in range(40)))
    results: list[Any] = []

    def bill() -> None:
        try:
            results.append(invoice(sync))
        except NothingToInvoice as exc:
            results.append(exc)

    threads = [threading.Thread(target=bill) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    billed = [tid for r in results if isinstance(r, dict) for tid in r["lines"][0]["timesheet_ids"]]
    assert len(billed) == len(set(billed)) == 40
    assert sum(isinstance(r, NothingToInvoice) for r in results) == 1


def test_void_releases_exactly_the_consumed_time_and_applies_the_parked_edit(
    connect_with: Any,
) -> None:
    sync: Sync = connect_with(invoiced_before="2026-11-01")
    sync.apply(
        project(rate="60"),
        timesheet("OLD", log_date="2026-10-20"),  # invoiced by the cut-off, by no invoice
        timesheet("L1"),
        timesheet("L2"),
    )
    made = invoice(sync, scope=Scope(date_from=date.fromisoformat("2026-11-01")))
    sync.apply(timesheet("L1", minutes=120, at=LATER))  # edited while locked
    assert sync.row(Timesheet, "L1").minutes == 60

    with sync.sessions.begin() as session:
        released = void_invoice(session, sync.organization_id, made["id"])

    assert sorted(released) == sorted(made["lines"][0]["timesheet_ids"])
    assert billing_status(sync, "OLD", "L1", "L2") == ["invoiced", "unbilled", "unbilled"]
    assert sync.row(Timesheet, "L1").minutes == 120
    assert ("timesheets", "L1", "conflict_invoiced") not in [e[:3] for e in sync.errors()]


def test_the_unbilled_summary_gives_hours_and_amount_by_task_and_by_staff(sync: Sync) -> None:
    sync.apply(
        project(billing_type="based_on_task_hours", rate="100"),
        task("T1", rate="80"),
        timesheet("L1", task_id="T1", minutes=90),
        timesheet("L2", minutes=30, owner=BEN),
    )
    with sync.sessions() as session:
        found = unbilled_summary(session, sync.organization_id, sync.row(Project, "P1").id)
    summary = found.model_dump(mode="json")

    # T1 1.5 h × 80 = 120; general 0.5 h × 100 = 50
    assert (summary["hours"], summary["amount"]) == ("2.00", "170.00")
    assert {r["name"]: r["amount"] for r in summary["by_task"]} == {
        "Task T1": "120.00",
        "General work": "50.00",
    }
    assert {r["name"]: r["hours"] for r in summary["by_staff"]} == {
        "Asha Rao": "1.50",
        "Ben Okoro": "0.50",
    }


# -- the API ------------------------------------------------------------------------------


def test_the_api_creates_lists_and_voids_an_invoice(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project(rate="60"), task("T1"), timesheet("L1", task_id="T1", minutes=30))
    project_id = sync.row(Project, "P1").id
    task_id = sync.row(Task, "T1").id

    made = client.post(
        f"/api/v1/projects/{project_id}/invoices",
        json={"scope": {"task_ids": [task_id]}, "group_by": "task"},
        headers=org.auth(),
    )
    again = client.post(f"/api/v1/projects/{project_id}/invoices", json={}, headers=org.auth())
    listed = client.get(f"/api/v1/invoices?project_id={project_id}", headers=org.auth("viewer"))
    voided = client.post(f"/api/v1/invoices/{made.get_json()['id']}/void", headers=org.auth())

    assert made.status_code == 201 and made.get_json()["total"] == "30.00"
    assert again.status_code == 409 and again.get_json()["error"] == "nothing_to_invoice"
    assert [i["number"] for i in listed.get_json()["items"]] == ["INV-000001"]
    assert voided.get_json()["status"] == "void"
    assert voided.get_json()["released_timesheet_ids"] == [sync.row(Timesheet, "L1").id]


def test_the_api_sets_a_staff_rate_and_reports_unbilled_time(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project(billing_type="based_on_staff_hours"), timesheet("L1", minutes=90))
    staff_id = sync.row(StaffUser, ASHA["id"]).id
    project_id = sync.row(Project, "P1").id

    viewer = client.patch(
        f"/api/v1/staff/{staff_id}", json={"rate": 40}, headers=org.auth("viewer")
    )
    admin = client.patch(f"/api/v1/staff/{staff_id}", json={"rate": 40}, headers=org.auth())
    summary = client.get(f"/api/v1/projects/{project_id}/unbilled", headers=org.auth("viewer"))

    assert (viewer.status_code, admin.status_code) == (403, 200)
    assert (summary.get_json()["hours"], summary.get_json()["amount"]) == ("1.50", "60.00")


def test_an_invoice_of_time_without_a_rate_is_a_409_naming_it(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project(), timesheet("L1"))

    response = client.post(
        f"/api/v1/projects/{sync.row(Project, 'P1').id}/invoices", json={}, headers=org.auth()
    )

    assert response.status_code == 409
    assert response.get_json()["error"] == "rate_missing"


def test_an_invoice_over_what_its_amounts_hold_is_a_409_not_a_500(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    # Found by Schemathesis: the largest rate the API takes, times enough hours, made a
    # total the invoices table cannot store (Numeric(18, 4): below 10^14).
    sync.apply(project(), *(timesheet(f"L{n}", minutes=1440) for n in range(5)))
    project_url = f"/api/v1/projects/{sync.row(Project, 'P1').id}"
    client.patch(project_url, json={"rate": "999999999999.99"}, headers=org.auth())

    response = client.post(f"{project_url}/invoices", json={}, headers=org.auth())

    # 5 × 24 h × 999,999,999,999.99 ≈ 1.2 × 10^14
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["error"] == "conflict"
    assert billing_status(sync, *(f"L{n}" for n in range(5))) == ["unbilled"] * 5
