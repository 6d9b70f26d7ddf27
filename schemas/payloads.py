"""One payload model per portal module (PORTAL_API.md part A, binding).

Field names follow the portal's documented REST API. Ids are strings (portal ids
exceed 2^53); an integer id is accepted and turned into its string. Unknown extra
keys are kept, not rejected: portals add custom fields freely.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    NonNegativeInt,
    model_validator,
)

__all__ = [
    "BillingType",
    "BugData",
    "DeletedRecord",
    "MilestoneData",
    "PortalId",
    "PrimaryClient",
    "ProjectData",
    "TaskData",
    "TasklistData",
    "TimesheetData",
    "UserData",
    "UserRef",
]


def _id_as_string(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


PortalId = Annotated[
    str, BeforeValidator(_id_as_string), Field(min_length=1, max_length=64, pattern=r"^\S+$")
]
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]
BillingType = Literal[
    "fixed_cost_for_project",
    "based_on_project_hours",
    "based_on_task_hours",
    "based_on_staff_hours",
]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        """An optional field sent as "" is absent: senders that fill a body from a
        template (Zoho's webhooks) send an empty value for a field a record lacks."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            key: value
            for key, value in data.items()
            if not (value == "" and key in fields and not fields[key].is_required())
        }


class UserRef(_Payload):
    id: PortalId | None = None
    name: str | None = None
    email: str | None = None


class PrimaryClient(_Payload):
    id: PortalId
    name: str = Field(min_length=1)
    email: str | None = None
    currency_code: str | None = Field(default=None, min_length=3, max_length=3)
    crm_id: str | None = None


class ProjectData(_Payload):
    id: PortalId
    name: str = Field(min_length=1)
    status: Literal["active", "archived", "template"] | None = None
    currency_code: str | None = Field(default=None, min_length=3, max_length=3)
    billing_type: BillingType | None = None
    rate: Money | None = None
    budget_value: Money | None = None
    owner: UserRef | None = None
    primary_client: PrimaryClient | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class MilestoneData(_Payload):
    id: PortalId
    project_id: PortalId
    name: str = Field(min_length=1)
    status: Literal["completed", "notcompleted"] | None = None
    start_date: date | None = None
    end_date: date | None = None


class TasklistData(_Payload):
    id: PortalId
    project_id: PortalId
    name: str = Field(min_length=1)
    milestone_id: PortalId | None = None


class TaskData(_Payload):
    id: PortalId
    project_id: PortalId
    name: str = Field(min_length=1)
    tasklist_id: PortalId | None = None
    milestone_id: PortalId | None = None
    status: str | None = None
    billing_type: Literal["Billable", "Non Billable", "None"] | None = None
    rate: Money | None = None
    owners: list[UserRef] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class BugData(_Payload):
    id: PortalId
    project_id: PortalId
    title: str = Field(min_length=1)
    status: str | None = None
    severity: str | None = None
    assignee: UserRef | None = None


class UserData(_Payload):
    id: PortalId
    name: str = Field(min_length=1)
    email: EmailStr
    role: Literal["admin", "manager", "employee", "contractor"] | None = None
    active: bool = True


class TimesheetOwner(_Payload):
    id: PortalId
    name: str = Field(min_length=1)
    email: EmailStr


class TimesheetData(_Payload):
    id: PortalId
    project_id: PortalId
    log_date: date
    minutes: NonNegativeInt
    bill_status: Literal["Billable", "Non Billable"]
    approval_status: Literal["Approved", "Pending", "Unapproved", "Rejected"]
    owner: TimesheetOwner
    task_id: PortalId | None = None
    bug_id: PortalId | None = None
    name: str | None = None
    notes: str | None = None


class DeletedRecord(_Payload):
    id: PortalId
    project_id: PortalId | None = None
