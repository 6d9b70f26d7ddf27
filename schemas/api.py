"""Management and read API request and response bodies (DESIGN §7a)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field, model_validator

from schemas.payloads import BillingType

__all__ = [
    "CustomerCreate",
    "ErrorBody",
    "FieldMap",
    "FieldMapping",
    "InvoiceUserCreate",
    "ProjectCreate",
    "IntegrationCreate",
    "IntegrationCreated",
    "IntegrationEnable",
    "IntegrationUpdate",
    "PullSource",
    "SecretRotated",
]

ModuleName = Literal["projects", "milestones", "tasklists", "tasks", "bugs", "timesheets", "users"]
FieldType = Literal["text", "number", "decimal", "date", "boolean"]
MappedModule = Literal["projects", "tasks"]


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


class ErrorBody(BaseModel):
    error: str
    message: str
    details: Any = None


class PullSource(BaseModel):
    """Where the pull client reads the portal (used from the pull-sync issue on)."""

    model_config = ConfigDict(extra="forbid")

    base_url: AnyHttpUrl
    credentials: dict[str, str] = Field(default_factory=dict)


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
        """The selected modules; projects are always implied."""
        return sorted({"projects", *self.modules})


class IntegrationUpdate(BaseModel):
    """PATCH /api/v1/integrations/<id>: the settings that may change after connecting."""

    model_config = ConfigDict(extra="forbid")

    customer_duplication: Literal["clone", "overwrite"] | None = None
    restrict_project_creation: bool | None = None
    field_map: FieldMap | None = None
    modules: list[ModuleName] | None = None
    source: PullSource | None = None

    def module_set(self) -> list[str]:
        return sorted({"projects", *(self.modules or [])})


class IntegrationEnable(BaseModel):
    """POST /api/v1/integrations/<id>/enable; a portal id other than the connected one is 409."""

    model_config = ConfigDict(extra="forbid")

    portal_id: str | None = Field(default=None, min_length=1, max_length=64)


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
    customer_id: int
    billing_type: BillingType | None = None
    crm_id: str | None = Field(default=None, max_length=64)


class IntegrationCreated(BaseModel):
    id: str
    status: str
    webhook_secret: str | None = None
    webhook_token: str | None = None


class SecretRotated(BaseModel):
    webhook_secret: str
    previous_secret_expires_at: str
