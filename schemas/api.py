"""Management and read API request bodies (and the webhook set-up guide)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    model_validator,
)

from schemas.envelope import EventId
from schemas.payloads import BillingType, NotNull, RowId, UtcDatetime

__all__ = [
    "CustomerCreate",
    "DeadLetterBulk",
    "DeadLetterQuery",
    "DeadLetterReplayOne",
    "FieldMap",
    "FieldMapping",
    "Grouping",
    "InvoiceUserCreate",
    "ProjectBillingSet",
    "ProjectCreate",
    "IntegrationCreate",
    "IntegrationEnable",
    "IntegrationUpdate",
    "InvoiceCreate",
    "InvoiceScope",
    "ExpenseCreate",
    "ExpenseUpdate",
    "QuoteCreate",
    "QuoteLine",
    "QuoteUpdate",
    "RateSet",
    "RecurringCreate",
    "RecurringUpdate",
    "PullSource",
    "ModuleWebhookSetup",
    "WebhookSetup",
    "WebhookTemplate",
    "WebhookTemplateField",
]

ModuleName = Literal["projects", "milestones", "tasklists", "tasks", "bugs", "timesheets", "users"]
FieldType = Literal["text", "number", "decimal", "date", "boolean"]
MappedModule = Literal["projects", "tasks"]
# How invoice lines group billed time: one line, per task, per staff user, per task and
# staff user, per timesheet.
Grouping = Literal["single", "task", "staff", "task_staff", "timesheet"]


class FieldMapping(BaseModel):
    """One portal custom field copied into one invoicing custom field of the same type."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=100, description="Portal custom field label.")
    source_type: FieldType
    target: str = Field(min_length=1, max_length=100, description="Invoicing custom field.")
    target_type: FieldType

    @model_validator(mode="after")
    def _same_type(self) -> FieldMapping:
        if self.source_type != self.target_type:
            raise ValueError(
                f"cannot map {self.source!r} ({self.source_type}) to {self.target!r} "
                f"({self.target_type}): a custom field maps only to a field of the same type"
            )
        return self


FieldMap = dict[MappedModule, list[FieldMapping]]


def with_projects(modules: list[ModuleName]) -> list[str]:
    """The selected modules; projects are always implied."""
    return sorted({"projects", *modules})


# Zoho data centres by their domain suffix (accounts.zoho.<dc>); "ca" is zohocloud.ca.
DataCentre = Literal["com", "eu", "in", "com.au", "jp", "ca", "sa", "com.cn", "uk"]
_TOKEN_ONLY = frozenset({"access_token"})
_REFRESH_SET = frozenset({"client_id", "client_secret", "refresh_token"})
_REFRESH_EXTRAS = frozenset({"accounts_url", "access_token"})


class PullSource(BaseModel):
    """Where the pull client reads the portal, and with which Zoho credentials.

    ``credentials`` is either ``{access_token}`` (a token minted elsewhere, never
    renewed) or a self client's ``{client_id, client_secret, refresh_token}``,
    optionally with ``accounts_url`` (overrides the data centre's accounts host)
    and a current ``access_token``.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: AnyHttpUrl | None = Field(
        default=None, description="Portal API base URL; empty: the data centre's Projects host."
    )
    dc: DataCentre = "com"
    credentials: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _credential_shape(self) -> PullSource:
        names = frozenset(self.credentials)
        empty = sorted(name for name, value in self.credentials.items() if not value.strip())
        if empty:
            raise ValueError(f"credentials {', '.join(empty)} must not be empty")
        if names == _TOKEN_ONLY or _REFRESH_SET <= names <= _REFRESH_SET | _REFRESH_EXTRAS:
            return self
        raise ValueError(
            "credentials must be either {access_token} or {client_id, client_secret, "
            "refresh_token} (optionally with accounts_url and access_token); got {"
            + ", ".join(sorted(names))
            + "}"
        )


class IntegrationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portal_id: str = Field(min_length=1, max_length=64)
    modules: list[ModuleName] = Field(default_factory=lambda: list[ModuleName](["projects"]))
    invoiced_before: date | None = None
    customer_duplication: Literal["clone", "overwrite"] = "overwrite"
    restrict_project_creation: bool = False
    field_map: FieldMap = Field(default_factory=dict)
    verification: Literal["signature", "token"] = "signature"
    source: PullSource | None = None

    def module_set(self) -> list[str]:
        return with_projects(self.modules)


class IntegrationUpdate(BaseModel):
    """PATCH /api/v1/integrations/<id>: the settings that may change after connecting."""

    model_config = ConfigDict(extra="forbid")

    customer_duplication: Annotated[Literal["clone", "overwrite"] | None, NotNull] = None
    restrict_project_creation: Annotated[bool | None, NotNull] = None
    field_map: Annotated[FieldMap | None, NotNull] = None
    modules: Annotated[list[ModuleName] | None, NotNull] = None
    source: PullSource | None = None  # null removes the pull source

    def module_set(self) -> list[str]:
        return with_projects(self.modules or [])


class IntegrationEnable(BaseModel):
    """POST /api/v1/integrations/<id>/enable; a portal id other than the connected one is 409."""

    model_config = ConfigDict(extra="forbid")

    portal_id: str | None = Field(default=None, min_length=1, max_length=64)


class DeadLetterQuery(BaseModel):
    """Which dead letters an operation applies to (query string or JSON ``filter``)."""

    model_config = ConfigDict(extra="forbid")

    integration_id: str | None = Field(default=None, max_length=36)
    module: ModuleName | None = None
    action: Literal["created", "updated", "deleted"] | None = None
    error_class: str | None = Field(default=None, max_length=100)
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    event_id: str | None = Field(default=None, max_length=200)
    ids: list[RowId] = Field(default_factory=list, max_length=1000)

    def is_empty(self) -> bool:
        return not any(self.model_dump(exclude_defaults=True).values())


class DeadLetterBulk(BaseModel):
    """POST /api/v1/dead-letters/{replay,delete}: a filter (or ``all``), dry run, pacing."""

    model_config = ConfigDict(extra="forbid")

    filter: DeadLetterQuery = Field(default_factory=DeadLetterQuery)
    all: bool = False
    dry_run: bool = False
    rate: float | None = Field(default=None, gt=0, le=10_000, description="Messages/s (replay).")
    limit: int = Field(default=1000, gt=0, le=10_000, description="At most this many (replay).")

    @model_validator(mode="after")
    def _filter_or_all(self) -> DeadLetterBulk:
        if not self.all and self.filter.is_empty():
            raise ValueError("give a filter, or all: true to act on every dead letter")
        return self


class DeadLetterReplayOne(BaseModel):
    """POST /api/v1/dead-letters/<id>/replay, optionally with an edited event."""

    model_config = ConfigDict(extra="forbid")

    event: dict[str, Any] | None = None
    event_id: EventId | None = Field(
        default=None,
        description="With an event: replay it under this id (an unreadable letter's "
        "default is the event's own event_id, else a new one).",
    )


class InvoiceScope(BaseModel):
    """Which time to bill; empty means the whole project."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    milestone_ids: list[RowId] = Field(default_factory=list, max_length=1000)
    tasklist_ids: list[RowId] = Field(default_factory=list, max_length=1000)
    task_ids: list[RowId] = Field(default_factory=list, max_length=1000)
    date_from: date | None = Field(default=None, alias="from")
    date_to: date | None = Field(default=None, alias="to")


class InvoiceCreate(BaseModel):
    """POST /api/v1/projects/<id>/invoices."""

    model_config = ConfigDict(extra="forbid")

    scope: InvoiceScope = Field(default_factory=InvoiceScope)
    group_by: Grouping = "single"
    issue_date: date | None = None
    amount: Decimal | None = Field(
        default=None,
        gt=0,
        max_digits=18,
        decimal_places=4,
        description="Fixed-cost projects: the part of the amount to bill.",
    )


class RateSet(BaseModel):
    """PATCH /api/v1/{projects,tasks,staff}/<id>: the invoicing side's hourly rate
    (wins over the portal's; null falls back to it)."""

    model_config = ConfigDict(extra="forbid")

    rate: Decimal | None = Field(ge=0, max_digits=18, decimal_places=6)


class ProjectBillingSet(BaseModel):
    """PATCH /api/v1/projects/<id>: the invoicing side's rate and billing method (win
    over the portal's; null falls back to it; a field left out is left as it is)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    rate: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=6)
    billing_type: BillingType | None = None

    @model_validator(mode="after")
    def _something(self) -> ProjectBillingSet:
        if not self.model_fields_set:
            raise ValueError("give rate and/or billing_type")
        return self


class ExpenseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    expense_date: date = Field(alias="date")
    description: str = Field(min_length=1, max_length=255)
    amount: Decimal = Field(gt=0, max_digits=18, decimal_places=4)
    billable: bool = True


class ExpenseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    expense_date: Annotated[date | None, NotNull] = Field(default=None, alias="date")
    description: Annotated[str | None, NotNull] = Field(default=None, min_length=1, max_length=255)
    amount: Annotated[Decimal | None, NotNull] = Field(
        default=None, gt=0, max_digits=18, decimal_places=4
    )
    billable: Annotated[bool | None, NotNull] = None


class QuoteLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=255)
    # Below 10,000 hours at below 10^8 an hour, 100 lines total below 10^14: what the
    # quote's Numeric(18, 4) total holds.
    hours: Decimal = Field(ge=0, max_digits=8, decimal_places=4)
    rate: Decimal = Field(ge=0, max_digits=14, decimal_places=6)


class QuoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[QuoteLine] = Field(min_length=1, max_length=100)
    issue_date: date | None = None
    expiry_date: date | None = None


class QuoteUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: Annotated[list[QuoteLine] | None, NotNull] = Field(
        default=None, min_length=1, max_length=100
    )
    status: Annotated[Literal["draft", "sent", "accepted", "declined"] | None, NotNull] = None
    expiry_date: date | None = None


class RecurringCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    frequency: Literal["weekly", "monthly"]
    start_date: date
    end_date: date | None = None
    group_by: Grouping = "single"
    amount: Decimal | None = Field(
        default=None, gt=0, max_digits=18, decimal_places=4, description="Fixed-cost: per period."
    )


class RecurringUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str | None, NotNull] = Field(default=None, min_length=1, max_length=255)
    end_date: date | None = None
    group_by: Annotated[Grouping | None, NotNull] = None
    amount: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=4)
    active: Annotated[bool | None, NotNull] = None


class CustomerCreate(BaseModel):
    """A customer made on the invoicing side (POST /api/v1/customers)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    email: EmailStr | None = None
    currency_code: str = Field(min_length=3, max_length=3)
    crm_id: str | None = Field(default=None, max_length=64)


class InvoiceUserCreate(BaseModel):
    """A user of the invoicing organization (POST /api/v1/users)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    email: EmailStr


class ProjectCreate(BaseModel):
    """A project made on the invoicing side (POST /api/v1/projects)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    customer_id: RowId
    billing_type: BillingType | None = None
    crm_id: str | None = Field(default=None, max_length=64)


WebhookFieldKind = Literal[
    "id", "text", "email", "date", "datetime", "minutes", "decimal", "boolean", "currency", "choice"
]


class WebhookTemplateField(BaseModel):
    """One value of a body template: where it goes and which Zoho field fills it."""

    path: str = Field(description="Where the value goes in the envelope, e.g. data.project_id.")
    placeholder: str = Field(description="What the admin picks in Zoho, e.g. ${Project Id}.")
    required: bool = Field(description="The event is refused (422) without it.")
    kind: WebhookFieldKind
    allowed: list[str] = Field(default_factory=list, description="The values of a choice.")
    format: str = Field(description="The value billsync accepts, in words.")


class WebhookTemplate(BaseModel):
    """The webhook body for one action of one module, attached to the rule for that action."""

    action: Literal["created", "updated", "deleted"]
    trigger: str = Field(description="The Zoho rule trigger to attach it to.")
    body_template: str = Field(description="JSON text to paste as the user-defined body.")
    required_fields: list[str]
    fields: list[WebhookTemplateField]


class ModuleWebhookSetup(BaseModel):
    """What to configure in Zoho Projects for one billsync module."""

    module: ModuleName
    zoho_module: str
    where: str = Field(description="Where in Zoho to configure it; 'not confirmed' if unknown.")
    method: Literal["POST"] = "POST"
    url: str = Field(description="The URL to notify, without the token.")
    url_with_token: str | None = Field(
        default=None,
        description="The URL with the token in it, if Zoho puts custom parameters "
        "anywhere but the query string; None in signature mode.",
    )
    custom_parameters: dict[str, str] = Field(
        default_factory=dict, description="Zoho's 'Append custom parameters' (the token)."
    )
    templates: list[WebhookTemplate]
    placeholders_confirmed: bool = False
    note: str
    caveats: list[str] = Field(default_factory=list)


class WebhookSetup(BaseModel):
    """GET /api/v1/integrations/<id>/webhook-setup: Zoho Projects webhooks, per module."""

    integration_id: str
    verification: Literal["signature", "token"]
    content_type: Literal["application/json"] = "application/json"
    token_parameter: str | None = Field(
        default=None, description="Query parameter carrying the webhook token (token mode)."
    )
    token_header: str | None = Field(
        default=None, description="Header alternative for senders that can set headers."
    )
    warning: str | None = None
    notes: list[str]
    modules: list[ModuleWebhookSetup]
