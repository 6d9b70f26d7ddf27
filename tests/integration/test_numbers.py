"""Every amount, rate and hour figure is written by one rule (schemas/numbers.py):
fixed-point, never an exponent; money in the currency's minor units; rates in them too
unless they have more significant decimals (up to 6); hours with 2 decimals."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from flask.testing import FlaskClient

from schemas.numbers import hours_text, money_text, rate_text
from tests.conftest import Org
from tests.events import CLIENT, project, task, timesheet
from tests.integration.sync_harness import Sync
from worker.db import Project, StaffUser, Task

EXPONENT = re.compile(r"^-?\d+(\.\d+)?[eE][+-]?\d+$")
# What each figure must look like in US dollars (2 minor units).
USD_FIGURES = {
    "amount": re.compile(r"^-?\d+\.\d{2}$"),
    "total": re.compile(r"^-?\d+\.\d{2}$"),
    "hours": re.compile(r"^\d+\.\d{2}$"),
    "rate": re.compile(r"^\d+\.\d{2,6}$"),
}


def figures_off_the_rule(body: Any, path: str = "") -> list[str]:
    """Where ``body`` holds an exponent anywhere, or a figure not written by the rule."""
    found = []
    if isinstance(body, dict):
        for key, value in body.items():
            rule = USD_FIGURES.get(key)
            if rule is not None and isinstance(value, str) and not rule.match(value):
                found.append(f"{path}.{key}={value!r}")
            found += figures_off_the_rule(value, f"{path}.{key}")
    elif isinstance(body, list):
        for n, value in enumerate(body):
            found += figures_off_the_rule(value, f"{path}[{n}]")
    elif isinstance(body, str) and EXPONENT.match(body):
        found.append(f"{path}={body!r}")
    return found


def test_every_billing_endpoint_writes_figures_fixed_point_by_the_rule(
    sync: Sync, client: FlaskClient, org: Org
) -> None:
    # Given figures that str(Decimal) writes with an exponent or with stray zeros
    sync.apply(
        project(billing_type="based_on_task_hours", rate="120"),
        task("T1", rate="80"),
        task("T2", rate="80.125"),
        timesheet("L1", task_id="T1", minutes=10),
        timesheet("L2", task_id="T2", minutes=45),
        timesheet("L3", minutes=90),
    )
    with sync.sessions() as session:
        staff_id = session.query(StaffUser.id).scalar()
    project_id, task_id = sync.row(Project, "P1").id, sync.row(Task, "T1").id
    admin, base = org.auth(), f"/api/v1/projects/{project_id}"
    bodies: dict[str, Any] = {}

    def call(name: str, method: str, url: str, **kwargs: Any) -> Any:
        response = client.open(url, method=method, headers=admin, **kwargs)
        assert response.status_code < 300, (name, response.get_json())
        bodies[name] = response.get_json()
        return bodies[name]

    # When every billing endpoint answers
    call("project rate", "PATCH", base, json={"rate": "1.2E+2"})
    call("task rate", "PATCH", f"/api/v1/tasks/{task_id}", json={"rate": "8E+1"})
    call("staff rate", "PATCH", f"/api/v1/staff/{staff_id}", json={"rate": "95"})
    expense = call(
        "expense",
        "POST",
        f"{base}/expenses",
        json={"date": "2026-11-20", "description": "Taxi", "amount": "42.5"},
    )
    quote = call(
        "quote",
        "POST",
        f"{base}/quotes",
        json={"lines": [{"description": "Design", "hours": "1E+1", "rate": "9.5E+1"}]},
    )
    schedule = {"name": "Monthly", "frequency": "monthly", "start_date": "2026-12-01"}
    recurring = call(
        "recurring", "POST", f"{base}/recurring-invoices", json={**schedule, "amount": "1E+3"}
    )
    call("unbilled", "GET", f"{base}/unbilled")
    invoice = call("invoice", "POST", f"{base}/invoices", json={"group_by": "task"})
    call("invoice one", "GET", f"/api/v1/invoices/{invoice['id']}")
    call("invoices", "GET", "/api/v1/invoices")
    call("void", "POST", f"/api/v1/invoices/{invoice['id']}/void")
    call("expense patch", "PATCH", f"/api/v1/expenses/{expense['id']}", json={"amount": "7E+1"})
    call("expenses", "GET", f"{base}/expenses")
    call("quote one", "GET", f"/api/v1/quotes/{quote['id']}")
    call("quotes", "GET", f"{base}/quotes")
    call("quote patch", "PATCH", f"/api/v1/quotes/{quote['id']}", json={"status": "sent"})
    call("recurring list", "GET", f"{base}/recurring-invoices")
    url = f"/api/v1/recurring-invoices/{recurring['id']}"
    call("recurring patch", "PATCH", url, json={"amount": "2.5E+3"})

    # Then no figure has an exponent, and each has the decimals the rule gives it
    assert {name: figures_off_the_rule(body) for name, body in bodies.items()} == {
        name: [] for name in bodies
    }
    # general time at the project's 1.2E+2, the tasks' 8E+1 and 80.125, the expense none
    rates = [line["rate"] for line in invoice["lines"]]
    assert rates == ["120.00", "80.00", "80.125", None]


def test_money_has_the_minor_units_of_its_currency() -> None:
    assert money_text(Decimal("1.2E+2"), "USD") == "120.00"
    assert money_text(Decimal("95.4"), "JPY") == "95"
    assert money_text(Decimal("120.000000"), "KWD") == "120.000"


def test_a_rate_keeps_its_significant_decimals_up_to_six() -> None:
    assert rate_text(Decimal("8E+1"), "USD") == "80.00"
    assert rate_text(Decimal("80.125000"), "USD") == "80.125"
    assert rate_text(Decimal("0.12345678"), "USD") == "0.123457"
    assert rate_text(Decimal("95"), "JPY") == "95"


def test_hours_have_two_decimals() -> None:
    assert hours_text(Decimal(10) / 60) == "0.17"
    assert hours_text(Decimal("2.2500")) == "2.25"


def test_an_invoice_in_yen_has_no_decimals(sync: Sync, client: FlaskClient, org: Org) -> None:
    sync.apply(
        project(client={**CLIENT, "currency_code": "JPY"}, rate="1500"),
        timesheet("L1", minutes=90),
    )
    url = f"/api/v1/projects/{sync.row(Project, 'P1').id}/invoices"

    invoice = client.post(url, json={}, headers=org.auth()).get_json()

    # 1.5 h × 1500 = 2250 yen
    line = invoice["lines"][0]
    assert (invoice["total"], line["rate"], line["hours"]) == ("2250", "1500", "1.50")
