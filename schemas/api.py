"""Management and read API request and response bodies (DESIGN §7a)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "IntegrationCreate",
    "IntegrationCreated",
    "PullSource",
    "SecretRotated",
]

ModuleName = Literal["projects", "milestones", "tasklists", "tasks", "bugs", "timesheets", "users"]


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
    field_map: dict[str, str] = Field(default_factory=dict)
    verification: Literal["signature", "token"] = "signature"
    source: PullSource | None = None

    def module_set(self) -> list[str]:
        """The selected modules; projects are always implied."""
        return sorted({"projects", *self.modules})


class IntegrationCreated(BaseModel):
    id: str
    status: str
    webhook_secret: str | None = None
    webhook_token: str | None = None


class SecretRotated(BaseModel):
    webhook_secret: str
    previous_secret_expires_at: str
