"""The API's answers: one model per JSON shape the gateway sends (errors included).

Every figure and time is written by the types here, so the rule is in one place:
``Timestamp`` is ``datetime.isoformat()`` (``2026-11-24T10:15:00+00:00``); ``Money``,
``Rate`` and ``Hours`` are the fixed-point text of :mod:`schemas.numbers`. Money and
rates depend on a currency (JPY has no decimals), so they hold a :class:`Figure`: a
value and its currency. A model read from an ORM row (``from_attributes``) gets the
currency of its bare ``Decimal`` figures from the validation context::

    InvoiceView.model_validate(invoice, context=figures_in(invoice.currency_code))

Documents stored as JSON (counts, scopes, custom fields, field maps) are answered as
stored, so they are typed ``dict[str, Any]`` rather than modelled.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    MISSING,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SerializeAsAny,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from schemas.numbers import hours_text, money_text, rate_text

__all__ = [
    "BugRecord",
    "CustomerRecord",
    "DeadLetterDeleted",
    "DeadLetterDetail",
    "DeadLetterPage",
    "DeadLetterView",
    "DryRun",
    "ErrorBody",
    "ErrorPage",
    "ExpenseView",
    "Figure",
    "Health",
    "Hours",
    "IntegrationCreated",
    "IntegrationDeleted",
    "IntegrationEnabled",
    "IntegrationStatusAnswer",
    "IntegrationStatusItem",
    "IntegrationStatusView",
    "IntegrationView",
    "InvoiceLineView",
    "InvoiceView",
    "InvoiceVoided",
    "MilestoneRecord",
    "ModuleStatus",
    "Money",
    "OrganizationStatus",
    "Page",
    "ProjectBillingView",
    "ProjectRecord",
    "QuoteLineView",
    "QuoteView",
    "Rate",
    "RateView",
    "Readiness",
    "ReadinessChecks",
    "RecordPage",
    "RecordView",
    "RecurringView",
    "ReplayAnswer",
    "RunView",
    "SecretRotated",
    "SourceView",
    "StaffRecord",
    "SyncErrorEntry",
    "TaskRecord",
    "TasklistRecord",
    "TimesheetRecord",
    "Timestamp",
    "UnbilledGroup",
    "UnbilledSummary",
    "UserView",
    "WebhookAccepted",
    "WebhookBatchAccepted",
    "figures_in",
]

# -- how values are written ---------------------------------------------------------------

Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

_FIXED_POINT = r"^-?[0-9]+(\.[0-9]+)?$"


@dataclass(frozen=True, slots=True)
class Figure:
    """An amount or a rate and the currency it is in (which sets its decimals); no
    currency means the default 2 decimals (a staff user's rate applies to every project)."""

    value: Decimal
    currency: str | None


_CURRENCY = "currency"


def figures_in(currency: str | None) -> dict[str, Any]:
    """The validation context giving bare ``Decimal`` figures their currency."""
    return {_CURRENCY: currency}


def _figure(value: Any, info: ValidationInfo) -> Figure:
    if isinstance(value, Figure):
        return value
    context = info.context or {}
    if _CURRENCY not in context:
        # A default here would silently write yen with cents: the caller must say.
        raise ValueError("a bare figure needs its currency: validate with figures_in(...)")
    # str() first: a float from stored JSON converts exactly as it was written.
    return Figure(Decimal(str(value)), context[_CURRENCY])


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


_FIGURE_SCHEMA = {"type": "string", "pattern": _FIXED_POINT}

Money = Annotated[
    Figure,
    PlainValidator(_figure),
    PlainSerializer(lambda figure: money_text(figure.value, figure.currency), return_type=str),
    WithJsonSchema({**_FIGURE_SCHEMA, "examples": ["120.00"]}),
]
"""An amount in its currency's minor units."""
Rate = Annotated[
    Figure,
    PlainValidator(_figure),
    PlainSerializer(lambda figure: rate_text(figure.value, figure.currency), return_type=str),
    WithJsonSchema({**_FIGURE_SCHEMA, "examples": ["80.125"]}),
]
"""An hourly rate: the currency's minor units, more where the rate has them."""
Hours = Annotated[
    Decimal,
    PlainValidator(_decimal),
    PlainSerializer(hours_text, return_type=str),
    WithJsonSchema({**_FIGURE_SCHEMA, "examples": ["2.25"]}),
]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """Every list: ``items`` and the cursor of the next page (null on the last)."""

    items: list[Item]
    next_cursor: str | None = None


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- errors -------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error: a stable code, a sentence for people, and what the code needs
    (field paths for validation errors)."""

    error: str = Field(examples=["validation_failed"])
    message: str
    details: Any = None


# -- health ---------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessChecks(BaseModel):
    database: bool
    schema_: bool = Field(alias="schema", serialization_alias="schema")
    broker: bool

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: ReadinessChecks


# -- webhooks -------------------------------------------------------------------------------


class WebhookAccepted(BaseModel):
    """An event queued. One sent again is queued again: the worker applies each event
    id once, so nothing changes."""

    event_id: str
    status: Literal["queued"]


class WebhookBatchAccepted(BaseModel):
    items: list[WebhookAccepted]


# -- synced records -------------------------------------------------------------------------


class RecordView(_Row):
    """What every synced record shows: its id here and the portal's."""

    id: int
    source_id: str | None
    integration_id: str | None
    source_modified_at: Timestamp | None


class ProjectRecord(RecordView):
    name: str | None
    status: str | None
    currency_code: str | None
    billing_type: str | None
    rate: Rate | None
    budget_value: Rate | None
    customer_id: int | None
    standalone: bool
    custom_fields: dict[str, Any] | None


class MilestoneRecord(RecordView):
    project_id: int | None
    name: str | None
    status: str | None
    start_date: dt.date | None
    end_date: dt.date | None


class TasklistRecord(RecordView):
    project_id: int | None
    name: str | None
    milestone_source_id: str | None


class TaskRecord(RecordView):
    project_id: int | None
    name: str | None
    tasklist_source_id: str | None
    milestone_source_id: str | None
    status: str | None
    billing_type: str | None
    rate: Rate | None
    custom_fields: dict[str, Any] | None


class BugRecord(RecordView):
    project_id: int | None
    title: str | None
    status: str | None
    severity: str | None


class TimesheetRecord(RecordView):
    project_id: int | None
    task_id: int | None
    bug_id: int | None
    staff_id: int | None
    log_date: dt.date | None
    minutes: int
    bill_status: str | None
    approval_status: str | None
    billing_status: str
    name: str | None
    notes: str | None


class CustomerRecord(RecordView):
    name: str | None
    email: str | None
    currency_code: str | None
    crm_id: str | None


class StaffRecord(RecordView):
    name: str | None
    email: str | None
    role: str | None
    active: bool
    kind: str


# One list type for every collection; each item is written as its own record type.
RecordPage = Page[SerializeAsAny[RecordView]]


class UserView(_Row):
    """A user of the invoicing organization."""

    id: int
    name: str
    email: str


class RateView(BaseModel):
    """A task's or staff user's rate on the invoicing side (null: the portal's)."""

    id: int
    rate: Rate | None


class ProjectBillingView(RateView):
    billing_type: str | None


# -- billing --------------------------------------------------------------------------------


class InvoiceLineView(_Row):
    position: int
    description: str
    hours: Hours
    rate: Rate | None
    amount: Money
    timesheet_ids: list[int] = Field(validation_alias="timesheets")

    @field_validator("timesheet_ids", mode="before")
    @classmethod
    def _timesheet_ids(cls, consumed: Any) -> Any:
        # Read from a line row, these are the links to what it billed.
        return [getattr(link, "timesheet_id", link) for link in consumed]


class InvoiceView(_Row):
    id: int
    number: str
    status: str
    project_id: int
    customer_id: int | None
    currency_code: str
    billing_type: str
    grouping: str
    scope: dict[str, Any]
    issue_date: dt.date
    total: Money
    lines: list[InvoiceLineView]
    voided_at: Timestamp | None


class InvoiceVoided(InvoiceView):
    released_timesheet_ids: list[int]


class UnbilledGroup(BaseModel):
    name: str
    hours: Hours
    amount: Money | None = Field(description="Null while some of the time has no rate.")


class UnbilledSummary(BaseModel):
    project_id: int
    currency_code: str
    billing_type: str
    hours: Hours
    amount: Money | None = Field(description="Null while some of the time has no rate.")
    by_task: list[UnbilledGroup]
    by_staff: list[UnbilledGroup]


class ExpenseView(BaseModel):
    id: int
    project_id: int
    date: dt.date
    description: str
    amount: Money
    billable: bool
    invoiced: bool


class QuoteLineView(BaseModel):
    position: int
    description: str
    hours: Hours
    rate: Rate
    amount: Money


class QuoteView(_Row):
    id: int
    number: str
    project_id: int
    status: str
    issue_date: dt.date
    expiry_date: dt.date | None
    currency_code: str
    lines: list[QuoteLineView]
    total: Money


class RecurringView(_Row):
    id: int
    project_id: int
    name: str
    frequency: str
    next_run: dt.date
    end_date: dt.date | None
    group_by: str = Field(validation_alias="grouping")
    amount: Money | None
    active: bool


# -- integrations ---------------------------------------------------------------------------


class SourceView(BaseModel):
    """The pull source without its credentials: their names only."""

    base_url: str | None
    dc: str
    credentials: list[str]


class IntegrationView(BaseModel):
    id: str
    portal_id: str
    status: str
    modules: list[str]
    invoiced_before: dt.date | None
    customer_duplication: str
    restrict_project_creation: bool
    field_map: dict[str, Any]
    verification: str
    source: SourceView | None
    webhook_url: str
    created_at: Timestamp


class IntegrationCreated(BaseModel):
    """The answer to a connect: the signing secret (or the token) is shown this once."""

    id: str
    status: str
    webhook_secret: str | MISSING = MISSING
    webhook_token: str | MISSING = MISSING


class SecretRotated(BaseModel):
    webhook_secret: str
    previous_secrets_expire_at: Timestamp


class RunView(_Row):
    """A sync run: a pull, a resume or a reconciliation."""

    id: int
    kind: str
    outcome: str | None
    started_at: Timestamp | None
    finished_at: Timestamp | None
    counts: dict[str, Any] | None
    mapped_fields: dict[str, Any] | None
    error: str | None


class IntegrationEnabled(IntegrationView):
    run: RunView | None = Field(description="The resume run; null if it was not disabled.")


class IntegrationDeleted(IntegrationView):
    standalone_projects: int


class ModuleStatus(BaseModel):
    last_sync_time: Timestamp | None
    watermark: Timestamp | None
    synced: int
    errors: int
    applied: int
    refused: int
    last_applied_at: Timestamp | None
    lag_seconds: float | None


class IntegrationStatusView(BaseModel):
    status: str
    modules: dict[str, ModuleStatus]
    parked_events: int
    dead_letters: int
    last_webhook_at: Timestamp | None
    last_applied_at: Timestamp | None
    current_run: RunView | None
    last_run: RunView | None
    throttled: bool = Field(description="The running pull waits on the portal's budget.")
    # As the pull wrote it: whole seconds stay an integer.
    expected_seconds_left: int | float | None


class _QueueDepths(BaseModel):
    """The shared queues (every integration's events go through them); null when the
    broker cannot say."""

    backlog: int | None
    dead_letter_queue: int | None


class _Identity(BaseModel):
    id: str
    portal_id: str


# A model's fields follow its bases from the last to the first.
class IntegrationStatusAnswer(_QueueDepths, IntegrationStatusView):
    """One integration's state, then the shared queues."""


class IntegrationStatusItem(IntegrationStatusView, _Identity):
    """An integration's ids, then its state."""


class _Integrations(BaseModel):
    integrations: list[IntegrationStatusItem]


class OrganizationStatus(_QueueDepths, _Integrations):
    """Every integration of the organization, then the shared queues."""


class SyncErrorEntry(_Row):
    id: int
    module: str
    source_id: str
    reason: str
    message: str
    resolution: str
    count: int
    first_seen: Timestamp
    last_seen: Timestamp
    resolved: bool
    payload: dict[str, Any] | None = Field(validation_alias="last_payload")
    details: dict[str, Any] | MISSING = Field(
        default=MISSING, description="What the reason needs, where it needs anything."
    )

    @field_validator("details", mode="before")
    @classmethod
    def _only_some(cls, details: Any) -> Any:
        return details or MISSING


class ErrorPage(Page[SyncErrorEntry]):
    by_module: dict[str, int] = Field(description="Errors matching per module, in all.")


# -- dead letters ---------------------------------------------------------------------------


class DeadLetterView(_Row):
    id: int
    integration_id: str | None
    event_id: str | None
    module: str | None
    action: str | None
    error_class: str | None
    error_message: str | None
    attempts: int
    first_failure_at: Timestamp | None
    last_failure_at: Timestamp | None
    dead_at: Timestamp | None


class DeadLetterDetail(DeadLetterView):
    """A dead letter whole: its message, or its body as text when it is not JSON."""

    message: Any | MISSING = MISSING
    body: str | MISSING = MISSING
    headers: dict[str, Any]
    traceback: str | None


class DeadLetterPage(Page[DeadLetterView]):
    total: int = Field(description="Dead letters matching, in all.")


class DryRun(BaseModel):
    matching: int
    dry_run: Literal[True] = True


class ReplayAnswer(BaseModel):
    matched: int
    replayed: int
    unreadable: int = Field(description="Bodies that are not a queue message: edit or delete.")


class DeadLetterDeleted(BaseModel):
    deleted: int
