"""Every field of the webhook contract and the API bodies is bounded by the column
that stores it: what validates, the database can write."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas import event_adapter
from schemas.api import (
    DeadLetterQuery,
    ExpenseCreate,
    ExpenseUpdate,
    IntegrationUpdate,
    InvoiceCreate,
    InvoiceScope,
    ProjectCreate,
    QuoteCreate,
    QuoteUpdate,
    RecurringCreate,
    RecurringUpdate,
)
from tests import events
from webhook_gateway.errors import numerals_up_to, parse_int, validation_details
from webhook_gateway.services import CredentialsCache, _Cached

BIGINT_MAX = 2**63 - 1

_CLIENT = {"id": "C1", "name": "Globex", "currency_code": "USD"}
_OWNER = {"id": "U1", "name": "Ann", "email": "ann@example.com"}
EVENTS: dict[str, dict[str, Any]] = {
    "projects": {"id": "P1", "name": "Website", "primary_client": _CLIENT, "owner": _OWNER},
    "milestones": {"id": "M1", "project_id": "P1", "name": "Beta"},
    "tasklists": {"id": "L1", "project_id": "P1", "name": "Design"},
    "tasks": {"id": "T1", "project_id": "P1", "name": "Mockups", "status": "Open"},
    "bugs": {"id": "B1", "project_id": "P1", "title": "Crash", "severity": "Major"},
    "users": {"id": "U1", "name": "Ann", "email": "ann@example.com"},
    "timesheets": {
        "id": "TS1",
        "project_id": "P1",
        "log_date": "2026-11-24",
        "minutes": 90,
        "bill_status": "Billable",
        "approval_status": "Approved",
        "owner": _OWNER,
        "name": "Mockups",
        "notes": "first pass",
    },
}


def event(module: str, path: str | None = None, value: Any = None) -> dict[str, Any]:
    """A valid event of ``module``, with ``value`` put at ``path`` (dotted) if given."""
    built = events.event(module, copy.deepcopy(EVENTS[module]))
    if path is not None:
        *parents, last = path.split(".")
        target: Any = built
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return built


def refusal(payload: Any, model: Any = None) -> list[dict[str, Any]]:
    """The validation details (as the gateway answers them) of a refused payload."""
    with pytest.raises(ValidationError) as caught:
        if model is None:
            event_adapter.validate_python(payload)
        else:
            model.model_validate(payload)
    return validation_details(caught.value)


def refused_paths(payload: Any, model: Any = None) -> list[str]:
    return [d["path"] for d in refusal(payload, model)]


# -- text: as long as its column, not a character more ----------------------------------

TEXT_BOUNDS = [
    ("projects", "event_id", 200),
    ("projects", "data.id", 64),
    ("projects", "data.name", 255),
    ("projects", "data.primary_client.id", 64),
    ("projects", "data.primary_client.name", 255),
    ("projects", "data.primary_client.email", 320),
    ("projects", "data.primary_client.crm_id", 64),
    ("projects", "data.owner.name", 255),
    ("projects", "data.owner.email", 320),
    ("milestones", "data.project_id", 64),
    ("milestones", "data.name", 255),
    ("tasklists", "data.name", 255),
    ("tasklists", "data.milestone_id", 64),
    ("tasks", "data.name", 255),
    ("tasks", "data.status", 64),
    ("tasks", "data.tasklist_id", 64),
    ("bugs", "data.status", 64),
    ("bugs", "data.severity", 64),
    ("users", "data.name", 255),
    ("timesheets", "data.name", 255),
    ("timesheets", "data.owner.name", 255),
    ("timesheets", "data.task_id", 64),
]


@pytest.mark.parametrize(("module", "path", "limit"), TEXT_BOUNDS)
def test_a_text_field_holds_as_much_as_its_column(module: str, path: str, limit: int) -> None:
    event_adapter.validate_python(event(module, path, "x" * limit))


@pytest.mark.parametrize(("module", "path", "limit"), TEXT_BOUNDS)
def test_a_text_field_longer_than_its_column_is_refused_with_its_path(
    module: str, path: str, limit: int
) -> None:
    assert refused_paths(event(module, path, "x" * (limit + 1))) == [path]


def test_a_currency_code_is_three_letters() -> None:
    assert refused_paths(event("projects", "data.currency_code", "USDX")) == ["data.currency_code"]


@pytest.mark.parametrize("module", ["users", "timesheets"])
def test_an_email_longer_than_the_column_is_refused(module: str) -> None:
    path = "data.email" if module == "users" else "data.owner.email"
    too_long = "a" * 64 + "@" + ".".join(["b" * 60] * 5) + ".com"
    assert len(too_long) > 320
    assert refused_paths(event(module, path, too_long)) == [path]


# -- NUL: refused in every string, custom fields and extra keys included ---------------

NUL_PATHS = [
    ("projects", "event_id"),
    ("projects", "data.id"),
    ("projects", "data.name"),
    ("projects", "data.currency_code"),
    ("projects", "data.primary_client.name"),
    ("projects", "data.primary_client.email"),
    ("projects", "data.owner.email"),
    ("milestones", "data.project_id"),
    ("tasks", "data.status"),
    ("bugs", "data.title"),
    ("bugs", "data.severity"),
    ("users", "data.name"),
    ("timesheets", "data.notes"),
    ("timesheets", "data.owner.id"),
]


@pytest.mark.parametrize(("module", "path"), NUL_PATHS)
def test_a_nul_character_in_a_field_is_refused_with_its_path(module: str, path: str) -> None:
    value = "ab\x00c" if not path.endswith("currency_code") else "U\x00D"
    assert path in refused_paths(event(module, path, value))


def test_a_nul_character_deep_in_a_custom_field_is_refused_naming_where() -> None:
    custom = {"Phase": [{"label": "ok"}, {"label": "bad\x00"}]}
    [detail] = refusal(event("projects", "data.custom_fields", custom))
    assert detail["path"] == "data.custom_fields.Phase"
    assert "1.label" in detail["message"]


def test_a_nul_character_in_a_custom_field_name_is_refused() -> None:
    paths = refused_paths(event("tasks", "data.custom_fields", {"Pha\x00se": "x"}))
    assert paths and all(p.startswith("data.custom_fields") for p in paths)


def test_a_nul_character_in_an_extra_key_value_is_refused_with_its_path() -> None:
    assert refused_paths(event("bugs", "data.reporter", {"name": "R\x00"})) == ["data.reporter"]


def test_a_nul_character_in_an_extra_key_name_is_refused() -> None:
    assert refused_paths(event("bugs", "data.rep\x00orter", "x")) == ["data"]


def test_an_extra_crm_id_must_fit_its_column() -> None:
    event_adapter.validate_python(event("projects", "data.crm_id", "z" * 64))
    assert refused_paths(event("projects", "data.crm_id", "z" * 65)) == ["data"]
    assert refused_paths(event("projects", "data.crm_id", {"id": 1})) == ["data"]


# -- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [0, 1440])
def test_a_time_log_holds_up_to_a_day(minutes: int) -> None:
    event_adapter.validate_python(event("timesheets", "data.minutes", minutes))


@pytest.mark.parametrize("minutes", [-1, 1441, 2**63, 10**30, 1.5, "90 min"])
def test_minutes_beyond_a_day_negative_or_not_whole_are_refused(minutes: Any) -> None:
    assert refused_paths(event("timesheets", "data.minutes", minutes)) == ["data.minutes"]


@pytest.mark.parametrize("rate", ["999999999999.999999", "0", "0.000001"])
def test_money_holds_what_numeric_18_6_holds(rate: str) -> None:
    event_adapter.validate_python(event("projects", "data.rate", rate))


@pytest.mark.parametrize(
    "rate", ["1000000000000", 1e30, "1e30", "0.0000001", "NaN", "Infinity", "-Infinity"]
)
def test_money_beyond_numeric_18_6_is_refused(rate: Any) -> None:
    assert refused_paths(event("projects", "data.rate", rate)) == ["data.rate"]
    assert refused_paths(event("tasks", "data.rate", rate)) == ["data.rate"]


# -- dates and times ------------------------------------------------------------------------


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_date_holds_years_1_to_9999(day: str) -> None:
    event_adapter.validate_python(event("timesheets", "data.log_date", day))
    event_adapter.validate_python(event("milestones", "data.end_date", day))


@pytest.mark.parametrize("day", ["0000-12-31", "10000-01-01", "2026-02-30", 10**20])
def test_a_date_outside_years_1_to_9999_is_refused(day: Any) -> None:
    assert refused_paths(event("timesheets", "data.log_date", day)) == ["data.log_date"]


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: the conversion overflows
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        "1969-12-31T23:59:59Z",
        "9999-12-31T00:00:00Z",
        "2026-11-24T10:00:00",  # no zone
    ],
)
def test_a_modified_at_that_does_not_convert_to_utc_within_range_is_refused(at: str) -> None:
    payload = event("projects")
    payload["modified_at"] = at
    assert refused_paths(payload) == ["modified_at"]


def test_modified_at_is_stored_in_utc() -> None:
    payload = event("projects")
    payload["modified_at"] = "1970-01-01T09:00:00+09:00"
    assert event_adapter.validate_python(payload).modified_at.isoformat() == (
        "1970-01-01T00:00:00+00:00"
    )


# -- API bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (IntegrationUpdate, "customer_duplication"),
        (IntegrationUpdate, "restrict_project_creation"),
        (IntegrationUpdate, "field_map"),
        (IntegrationUpdate, "modules"),
        (ExpenseUpdate, "date"),
        (ExpenseUpdate, "amount"),
        (ExpenseUpdate, "description"),
        (QuoteUpdate, "lines"),
        (QuoteUpdate, "status"),
        (RecurringUpdate, "name"),
        (RecurringUpdate, "group_by"),
        (RecurringUpdate, "active"),
    ],
)
def test_an_explicit_null_in_a_patch_is_refused_naming_the_field(
    model: type[BaseModel], field: str
) -> None:
    assert refused_paths({field: None}, model) == [field]
    model.model_validate({})  # left out: left as it is


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (QuoteUpdate, "expiry_date", None),
        (RecurringUpdate, "end_date", None),
        (RecurringUpdate, "amount", None),
        (IntegrationUpdate, "source", None),
    ],
)
def test_null_clears_a_field_whose_column_may_be_empty(
    model: type[BaseModel], field: str, value: Any
) -> None:
    assert field in model.model_validate({field: value}).model_fields_set


@pytest.mark.parametrize(
    ("model", "body", "path"),
    [
        (InvoiceCreate, {"amount": "1e30"}, "amount"),
        (InvoiceCreate, {"amount": 1e30}, "amount"),
        (InvoiceCreate, {"amount": "100000000000000"}, "amount"),
        (RecurringCreate, {"name": "m", "frequency": "weekly", "start_date": "2026-01-01",
                           "amount": 1e30}, "amount"),
        (RecurringUpdate, {"amount": "1e30"}, "amount"),
        (ExpenseCreate, {"date": "2026-01-01", "description": "d", "amount": 1e30}, "amount"),
        (ExpenseUpdate, {"amount": "99999999999999999"}, "amount"),
    ],
)  # fmt: skip
def test_an_amount_beyond_numeric_18_4_is_refused(
    model: type[BaseModel], body: dict[str, Any], path: str
) -> None:
    assert refused_paths(body, model) == [path]


def test_a_quote_total_always_fits_its_column() -> None:
    line = {"description": "d", "hours": "9999.9999", "rate": "99999999.999999"}
    QuoteCreate.model_validate({"lines": [line] * 100})
    assert refused_paths({"lines": [line] * 101}, QuoteCreate) == ["lines"]
    assert refused_paths({"lines": [{**line, "hours": "10000"}]}, QuoteCreate) == ["lines.0.hours"]
    assert refused_paths({"lines": [{**line, "rate": "100000000"}]}, QuoteCreate) == [
        "lines.0.rate"
    ]


@pytest.mark.parametrize("row_id", [0, -1, BIGINT_MAX + 1, 10**30])
def test_a_row_id_in_a_body_is_within_bigint(row_id: int) -> None:
    assert refused_paths({"name": "P", "customer_id": row_id}, ProjectCreate) == ["customer_id"]
    assert refused_paths({"task_ids": [row_id]}, InvoiceScope) == ["task_ids.0"]
    assert refused_paths({"ids": [row_id]}, DeadLetterQuery) == ["ids.0"]


def test_the_largest_bigint_is_a_row_id() -> None:
    ProjectCreate.model_validate({"name": "P", "customer_id": BIGINT_MAX})


# -- query integers and the credentials cache -------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["²", "١٢", "12²", "-1", "+1", " 1", "1_000", "1e3", "", "9223372036854775808", "9" * 5000],
)
def test_a_query_integer_is_ascii_digits_within_bigint(raw: str) -> None:
    assert parse_int(raw) is None


@pytest.mark.parametrize("raw", ["0", "42", "007", str(BIGINT_MAX)])
def test_ascii_digits_within_bigint_are_an_integer(raw: str) -> None:
    assert parse_int(raw) == int(raw)


@pytest.mark.parametrize("limit", [0, 7, 10, 305, 1000, BIGINT_MAX])
def test_the_path_id_pattern_matches_exactly_the_numerals_up_to_its_limit(limit: int) -> None:
    pattern = re.compile(numerals_up_to(limit))
    near = {0, 1, 9, 10, 99, 100, limit - 1, limit, limit + 1, limit * 10, 2**64}
    for n in sorted(near | set(range(0, min(limit + 50, 2000)))):
        if n >= 0:
            assert bool(pattern.fullmatch(str(n))) == (n <= limit), n
    assert pattern.fullmatch("²") is None and pattern.fullmatch("١٢") is None


def test_the_credentials_cache_never_holds_more_than_its_bound() -> None:
    cache = CredentialsCache(max_entries=3)
    for n in range(1000):
        cache.put(f"unknown-{n}", _Cached(0.0, None))
        assert len(cache) <= 3
    assert cache.get("unknown-999") is not None
    assert cache.get("unknown-0") is None


def test_the_credentials_cache_drops_the_least_recently_used() -> None:
    cache = CredentialsCache(max_entries=2)
    cache.put("a", _Cached(0.0, None))
    cache.put("b", _Cached(0.0, None))
    cache.get("a")  # a is used again: b is now the oldest
    cache.put("c", _Cached(0.0, None))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
