"""One payload model per portal module (the portal API contract, part A, binding).

Field names follow the portal's documented REST API. Ids are strings (portal ids
exceed 2^53); an integer id is accepted and turned into its string. Unknown extra
keys are kept, not rejected: portals add custom fields freely.

Every field is bounded by the column that stores it (worker/db/synced.py), so what
the gateway accepts the worker can write: an event the database would refuse is a
422 at the door, not a dead letter five attempts later. No string anywhere, custom
fields and extra keys included, may hold a NUL character: PostgreSQL text and JSONB
cannot store one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "BIGINT_MAX",
    "BillingType",
    "BugData",
    "DeletedRecord",
    "JsonValue",
    "MINUTES_PER_LOG_MAX",
    "MilestoneData",
    "NotNull",
    "PortalId",
    "PrimaryClient",
    "ProjectData",
    "RowId",
    "TRUSTED",
    "TaskData",
    "TasklistData",
    "TimesheetData",
    "UserData",
    "UTC_MAX",
    "UTC_MIN",
    "UserRef",
    "UtcDatetime",
    "in_utc_range",
    "nul_paths",
    "refuse_nul",
]

# The largest value of a BIGINT column (PostgreSQL; SQLite's INTEGER is the same 8 bytes).
BIGINT_MAX = 2**63 - 1
# A time log is one person's time on one date: more than a day is a sender error.
MINUTES_PER_LOG_MAX = 24 * 60
# Portals stamp changes in Unix time, so nothing real predates 1970; the far end
# leaves a day for arithmetic (a watermark minus or plus an overlap) before year 9999
# runs out of what datetimes hold.
UTC_MIN = datetime(1970, 1, 1, tzinfo=UTC)
UTC_MAX = datetime(9999, 12, 31, tzinfo=UTC) - timedelta(days=1)


def in_utc_range(value: datetime) -> datetime:
    """``value`` in UTC, if it is within [UTC_MIN, UTC_MAX]; converting may overflow
    (0001-01-01T00:00+14:00 is before year 1 in UTC), which is refused the same way."""
    try:
        in_utc = value.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not UTC_MIN <= in_utc <= UTC_MAX:
        raise PydanticCustomError(
            "datetime_out_of_range",
            "must be between {low} and {high} in UTC",
            {"low": UTC_MIN.isoformat(), "high": UTC_MAX.isoformat()},
        )
    return in_utc


# An aware datetime, stored and compared in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(in_utc_range)]


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain a NUL character (\\x00)")
    return value


def nul_paths(value: Any, path: str = "") -> list[str]:
    """Where in a JSON-like value a string (or a key) holds a NUL character."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                found.append(where)
            found += nul_paths(item, where)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += nul_paths(item, f"{path}.{index}" if path else str(index))
    return found


def _refuse_nul_inside(value: Any) -> Any:
    found = nul_paths(value)
    if found:
        raise PydanticCustomError(
            "nul_character",
            "must not contain a NUL character (\\x00), found at {where}",
            {"where": ", ".join(p or "the value itself" for p in found)},
        )
    return value


def _id_as_string(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


NoNul = AfterValidator(refuse_nul)
# Any JSON value without NUL characters: custom fields and extra keys are kept in a
# JSONB column as received.
JsonValue = Annotated[Any, AfterValidator(_refuse_nul_inside)]

PortalId = Annotated[
    str,
    BeforeValidator(_id_as_string),
    Field(min_length=1, max_length=64, pattern=r"^\S+$"),
    NoNul,
]
Name = Annotated[str, Field(min_length=1, max_length=255), NoNul]
ShortText = Annotated[str, Field(max_length=255), NoNul]
LongText = Annotated[str, NoNul]  # a Text column: the body size limit bounds it
Status = Annotated[str, Field(max_length=64), NoNul]
CurrencyCode = Annotated[str, Field(min_length=3, max_length=3), NoNul]
CrmId = Annotated[str, Field(max_length=64), NoNul]
Email = Annotated[str, Field(max_length=320), NoNul]
# Validation context for what billsync itself made from a validated model (a queue
# message): what was checked, or put in normal form, when the message was made (by the
# gateway, a pull, an edit) is taken as it comes: e-mail addresses (email-validator),
# blank optional fields (already absent: dumped as null) and NUL in extra keys (the
# consumer reads a body holding an escaped NUL without it). Types, bounds and choices
# are checked as ever; whatever fails is then validated without this context.
TRUSTED: dict[str, Any] = {"trusted": True}


def _trusted(info: ValidationInfo) -> bool:
    context = info.context
    return context is not None and bool(context.get("trusted"))


def _email_unless_trusted(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Any:
    """An e-mail address is checked and normalised by email-validator (two thirds of
    decoding a time log); a queue message billsync made from a validated model already
    holds the normal form, so under ``TRUSTED`` a plausible address is taken as it is."""
    plausible = isinstance(value, str) and "@" in value and len(value) <= 320
    if plausible and "\x00" not in value and _trusted(info):
        return value
    return handler(value)


ValidEmail = Annotated[EmailStr, Field(max_length=320), WrapValidator(_email_unless_trusted)]
# Numeric(18, 6): at most 12 digits before the point and 6 after.
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]
CustomFields = dict[Annotated[str, NoNul], JsonValue]
BillingType = Literal[
    "fixed_cost_for_project",
    "based_on_project_hours",
    "based_on_task_hours",
    "based_on_staff_hours",
]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    # Extra keys are stored in the JSONB payload as received.
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any, info: ValidationInfo) -> Any:
        """An optional field sent as "" is absent: senders that fill a body from a
        template (Zoho's webhooks) send an empty value for a field a record lacks.
        (What billsync made holds none: it dumped such a field as null.)"""
        if not isinstance(data, dict) or _trusted(info):
            return data
        fields = cls.model_fields
        return {
            key: value
            for key, value in data.items()
            if not (value == "" and key in fields and not fields[key].is_required())
        }

    @model_validator(mode="before")
    @classmethod
    def _keys_without_nul(cls, data: Any, info: ValidationInfo) -> Any:
        """Pydantic validates extra values, not extra keys; JSONB refuses NUL in both.
        (What billsync made was checked when it was made.)"""
        if isinstance(data, dict) and not _trusted(info):
            bad = [repr(key) for key in data if isinstance(key, str) and "\x00" in key]
            if bad:
                raise PydanticCustomError(
                    "nul_character",
                    "keys must not contain a NUL character (\\x00): {keys}",
                    {"keys": ", ".join(bad)},
                )
        return data


class UserRef(_Payload):
    id: PortalId | None = None
    name: ShortText | None = None
    email: Email | None = None


class PrimaryClient(_Payload):
    id: PortalId
    name: Name
    email: Email | None = None
    currency_code: CurrencyCode | None = None
    crm_id: CrmId | None = None


class ProjectData(_Payload):
    id: PortalId
    name: Name
    status: Literal["active", "archived", "template"] | None = None
    currency_code: CurrencyCode | None = None
    billing_type: BillingType | None = None
    rate: Money | None = None
    budget_value: Money | None = None
    owner: UserRef | None = None
    primary_client: PrimaryClient | None = None
    custom_fields: CustomFields = Field(default_factory=dict)

    @model_validator(mode="after")
    def _crm_id_fits(self) -> ProjectData:
        """``crm_id`` arrives as an extra key (the portal's API does not document it)
        and is stored in a String(64) column."""
        crm_id = (self.model_extra or {}).get("crm_id")
        if crm_id is not None and not (isinstance(crm_id, str) and len(crm_id) <= 64):
            raise PydanticCustomError(
                "crm_id_invalid", "crm_id must be text of at most 64 characters"
            )
        return self


class MilestoneData(_Payload):
    id: PortalId
    project_id: PortalId
    name: Name
    status: Literal["completed", "notcompleted"] | None = None
    start_date: date | None = None
    end_date: date | None = None


class TasklistData(_Payload):
    id: PortalId
    project_id: PortalId
    name: Name
    milestone_id: PortalId | None = None


class TaskData(_Payload):
    id: PortalId
    project_id: PortalId
    name: Name
    tasklist_id: PortalId | None = None
    milestone_id: PortalId | None = None
    status: Status | None = None
    billing_type: Literal["Billable", "Non Billable", "None"] | None = None
    rate: Money | None = None
    owners: list[UserRef] = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)


class BugData(_Payload):
    id: PortalId
    project_id: PortalId
    title: Annotated[LongText, Field(min_length=1)]
    status: Status | None = None
    severity: Status | None = None
    assignee: UserRef | None = None


class UserData(_Payload):
    id: PortalId
    name: Name
    email: ValidEmail
    role: Literal["admin", "manager", "employee", "contractor"] | None = None
    active: bool = True


class TimesheetOwner(_Payload):
    id: PortalId
    name: Name
    email: ValidEmail


class TimesheetData(_Payload):
    id: PortalId
    project_id: PortalId
    log_date: date
    minutes: Annotated[int, Field(ge=0, le=MINUTES_PER_LOG_MAX)]
    bill_status: Literal["Billable", "Non Billable"]
    approval_status: Literal["Approved", "Pending", "Unapproved", "Rejected"]
    owner: TimesheetOwner
    task_id: PortalId | None = None
    bug_id: PortalId | None = None
    name: ShortText | None = None
    notes: LongText | None = None


class DeletedRecord(_Payload):
    id: PortalId
    project_id: PortalId | None = None


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("null_not_allowed", "may be left out, but not null")
    return value


class _NotNull:
    """For PATCH bodies: a field left out stays as it is; an explicit null is refused
    where the column cannot be empty (the default None is not validated). Its JSON
    schema leaves null out, as the validation does."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_not_null, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        branches = [b for b in found.get("anyOf", ()) if b != {"type": "null"}]
        if "anyOf" in found and len(branches) == 1:
            rest = {k: v for k, v in found.items() if k != "anyOf"}
            return {**branches[0], **rest}
        if "anyOf" in found:
            return {**found, "anyOf": branches}
        return found


NotNull = _NotNull()
# Ids of rows (BIGINT primary keys) given in bodies.
RowId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
