"""Expenses, quotes, recurring invoices and invoicing-side rates (PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import Org
from tests.events import project, task, timesheet
from tests.integration.sync_harness import Sync
from worker.billing.recurring import create_recurring, run_due
from worker.db import Project, StaffUser, Task, Timesheet


def project_url(sync: Sync, path: str = "") -> str:
    return f"/api/v1/projects/{sync.row(Project, 'P1').id}{path}"


def test_a_billable_expense_goes_on_the_next_invoice_and_comes_back_on_void(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project(rate="60"), timesheet("L1", minutes=60))
    expense = {"date": "2026-11-20", "description": "Train ticket", "amount": "42.50"}
    made = client.post(project_url(sync, "/expenses"), json=expense, headers=org.auth())
    client.post(
        project_url(sync, "/expenses"),
        json={**expense, "description": "Lunch", "billable": False},
        headers=org.auth(),
    )

    invoice = client.post(project_url(sync, "/invoices"), json={}, headers=org.auth()).get_json()

    # 1 h × 60 + 42.50 = 102.50; the non-billable lunch is not offered
    assert invoice["total"] == "102.50"
    assert [line["description"] for line in invoice["lines"]] == [
        "Project P1: time",
        "Expense: Train ticket",
    ]
    locked = client.delete(f"/api/v1/expenses/{made.get_json()['id']}", headers=org.auth())
    assert locked.status_code == 409
    client.post(f"/api/v1/invoices/{invoice['id']}/void", headers=org.auth())
    listed = client.get(project_url(sync, "/expenses"), headers=org.auth()).get_json()["items"]
    assert [e["invoiced"] for e in listed] == [False, False]


def test_a_quote_prices_its_lines_in_the_customers_currency_and_can_be_accepted(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project())
    lines = [
        {"description": "Design", "hours": "10", "rate": "95"},
        {"description": "Build", "hours": "2.5", "rate": "33.333"},
    ]

    made = client.post(project_url(sync, "/quotes"), json={"lines": lines}, headers=org.auth())
    quote = made.get_json()
    accepted = client.patch(
        f"/api/v1/quotes/{quote['id']}", json={"status": "accepted"}, headers=org.auth()
    )
    deleted = client.delete(f"/api/v1/quotes/{quote['id']}", headers=org.auth())

    # 10 × 95 = 950.00; 2.5 × 33.333 = 83.3325 → 83.33; total 1033.33
    assert (made.status_code, quote["number"], quote["total"]) == (201, "QT-000001", "1033.33")
    assert [line["amount"] for line in quote["lines"]] == ["950.00", "83.33"]
    assert accepted.get_json()["status"] == "accepted"
    assert deleted.status_code == 204


def test_a_recurring_invoice_bills_each_ended_period_once(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(
        project(rate="60"),
        timesheet("L1", log_date="2026-10-05"),
        timesheet("L2", log_date="2026-11-03"),
        timesheet("L3", log_date="2026-11-20"),
    )
    schedule = {"name": "Monthly", "frequency": "monthly", "start_date": "2026-10-01"}
    assert (
        client.post(
            project_url(sync, "/recurring-invoices"), json=schedule, headers=org.auth()
        ).status_code
        == 201
    )

    first = run_due(sync.sessions, date(2026, 11, 25))
    second = run_due(sync.sessions, date(2026, 11, 25))

    # October (L1) is over; November is not: one invoice, and running again adds none
    assert [(r.period_start, r.period_end, r.outcome) for r in first] == [
        (date(2026, 10, 1), date(2026, 10, 31), "invoiced")
    ]
    assert second == []
    invoices = client.get("/api/v1/invoices", headers=org.auth()).get_json()["items"]
    assert [i["lines"][0]["timesheet_ids"] for i in invoices] == [[sync.row(Timesheet, "L1").id]]


def test_a_rate_set_on_the_invoicing_side_wins_over_the_portals(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(
        project(billing_type="based_on_task_hours", rate="100"),
        task("T1", rate="80"),
        timesheet("L1", task_id="T1", minutes=60),
    )
    client.patch(
        f"/api/v1/tasks/{sync.row(Task, 'T1').id}", json={"rate": "90"}, headers=org.auth()
    )
    sync.apply(task("T1", rate="70", at="2026-11-25T10:00:00Z"))  # a later portal edit

    invoice = client.post(project_url(sync, "/invoices"), json={}, headers=org.auth()).get_json()

    assert invoice["total"] == "90.00"


def test_a_billing_method_set_on_the_invoicing_side_wins_and_null_falls_back(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    # Given a project the portal bills by project hours (V3 shows no method at all)
    sync.apply(project(rate="100"), timesheet("L1", minutes=60))
    with sync.sessions.begin() as session:
        staff = session.scalars(select(StaffUser)).one()
        staff.rate = Decimal("150")
    url = f"/api/v1/projects/{sync.row(Project, 'P1').id}"

    # When the invoicing side bills it by staff hours
    changed = client.patch(url, json={"billing_type": "based_on_staff_hours"}, headers=org.auth())
    summary = client.get(project_url(sync, "/unbilled"), headers=org.auth()).get_json()

    # Then the staff rate prices the hour, and the project's rate was left alone
    assert changed.get_json() == {"id": 1, "rate": None, "billing_type": "based_on_staff_hours"}
    assert (summary["billing_type"], summary["amount"]) == ("based_on_staff_hours", "150.00")
    # and null hands the choice back to the portal
    client.patch(url, json={"billing_type": None}, headers=org.auth())
    back = client.get(project_url(sync, "/unbilled"), headers=org.auth()).get_json()
    assert (back["billing_type"], back["amount"]) == ("based_on_project_hours", "100.00")


def test_a_project_patch_without_a_field_is_refused(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project())
    url = f"/api/v1/projects/{sync.row(Project, 'P1').id}"
    assert client.patch(url, json={}, headers=org.auth()).status_code == 422
    bad = client.patch(url, json={"billing_type": "hourly"}, headers=org.auth())
    assert bad.status_code == 422


def test_billing_run_due_from_the_cli_is_idempotent(
    sync: Sync, database_url: str, broker_url: str, tmp_path: Path
) -> None:
    sync.apply(project(rate="60"), timesheet("L1", log_date="2026-11-03"))
    with sync.sessions.begin() as session:
        create_recurring(
            session,
            sync.organization_id,
            sync.row(Project, "P1").id,
            name="Weekly",
            frequency="weekly",
            start_date=date(2026, 11, 2),
        )
    env = {
        "PATH": "/usr/bin:/bin",
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "worker.cli", "billing", "run-due", "--today", "2026-11-16"]

    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(command, env=env, capture_output=True, text=True, check=True)

    # Weeks of Nov 2 (L1: invoiced) and Nov 9 (nothing) have ended; the week of Nov 16 has not
    outcomes = [json.loads(line)["outcome"] for line in first.stdout.splitlines()]
    assert outcomes == ["invoiced", "nothing_to_invoice"]
    assert second.stdout == ""


def test_quotes_and_schedules_are_listed_changed_and_stopped(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    sync.apply(project(rate="60"))
    line = {"description": "Design", "hours": "1", "rate": "10"}
    client.post(project_url(sync, "/quotes"), json={"lines": [line]}, headers=org.auth())
    schedule = {"name": "Weekly", "frequency": "weekly", "start_date": "2026-11-02"}
    made = client.post(project_url(sync, "/recurring-invoices"), json=schedule, headers=org.auth())
    url = f"/api/v1/recurring-invoices/{made.get_json()['id']}"

    renamed = client.patch(url, json={"name": "Every week"}, headers=org.auth()).get_json()
    stopped = client.delete(url, headers=org.auth()).get_json()
    quotes = client.get(project_url(sync, "/quotes"), headers=org.auth("viewer")).get_json()
    schedules = client.get(project_url(sync, "/recurring-invoices"), headers=org.auth()).get_json()

    assert [q["total"] for q in quotes["items"]] == ["10.00"]
    assert (renamed["name"], stopped["active"]) == ("Every week", False)
    assert [s["active"] for s in schedules["items"]] == [False]
    assert run_due(sync.sessions, date(2026, 12, 31)) == []
