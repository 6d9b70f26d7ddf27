"""The webhook envelope: one change event of one portal module.

The envelope is a tagged union. Created and updated events are discriminated on
``module`` and carry the module's full payload; a deleted event carries only the
record reference, whatever its module. ``modified_at`` is bounded so that it is
stored, compared and shifted by the pull's overlap without leaving what datetimes
hold (years 1 to 9999).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from schemas.payloads import (
    BugData,
    DeletedRecord,
    MilestoneData,
    ProjectData,
    TaskData,
    TasklistData,
    TimesheetData,
    UserData,
    in_utc_range,
    refuse_nul,
)

__all__ = [
    "Action",
    "BugEvent",
    "DeletedEvent",
    "MilestoneEvent",
    "Module",
    "ProjectEvent",
    "TaskEvent",
    "TasklistEvent",
    "TimesheetEvent",
    "UserEvent",
    "WebhookEvent",
    "event_adapter",
    "events_adapter",
]


class Module(StrEnum):
    """Portal modules, in the order a pull applies them (dependencies first)."""

    PROJECTS = "projects"
    USERS = "users"
    MILESTONES = "milestones"
    TASKLISTS = "tasklists"
    TASKS = "tasks"
    BUGS = "bugs"
    TIMESHEETS = "timesheets"


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


# Standard Webhooks forbids "." in ids; we also keep them short and printable
# (200: the processed_events column).
EventId = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^\s.]+$"), AfterValidator(refuse_nul)
]

_CHILD_MODULES = frozenset(
    {Module.MILESTONES, Module.TASKLISTS, Module.TASKS, Module.BUGS, Module.TIMESHEETS}
)


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: EventId | None = None
    modified_at: AwareDatetime

    @field_validator("modified_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return in_utc_range(value)


class _UpsertBase(_EventBase):
    action: Literal[Action.CREATED, Action.UPDATED]


class ProjectEvent(_UpsertBase):
    module: Literal[Module.PROJECTS]
    data: ProjectData


class MilestoneEvent(_UpsertBase):
    module: Literal[Module.MILESTONES]
    data: MilestoneData


class TasklistEvent(_UpsertBase):
    module: Literal[Module.TASKLISTS]
    data: TasklistData


class TaskEvent(_UpsertBase):
    module: Literal[Module.TASKS]
    data: TaskData


class BugEvent(_UpsertBase):
    module: Literal[Module.BUGS]
    data: BugData


class UserEvent(_UpsertBase):
    module: Literal[Module.USERS]
    data: UserData


class TimesheetEvent(_UpsertBase):
    module: Literal[Module.TIMESHEETS]
    data: TimesheetData


class DeletedEvent(_EventBase):
    """A delete of any module: only the reference is needed."""

    module: Module
    action: Literal[Action.DELETED]
    data: DeletedRecord

    @model_validator(mode="after")
    def _children_name_their_project(self) -> DeletedEvent:
        if self.module in _CHILD_MODULES and not self.data.project_id:
            raise ValueError(f"a deleted {self.module.value} record needs data.project_id")
        return self


def _event_tag(value: Any) -> str | None:
    """Route deletes to DeletedEvent and everything else by module."""
    if isinstance(value, dict):
        action, module = value.get("action"), value.get("module")
    else:
        action, module = getattr(value, "action", None), getattr(value, "module", None)
    if action == Action.DELETED:
        return "deleted"
    return str(module) if module is not None else None


WebhookEvent = Annotated[
    Annotated[ProjectEvent, Tag(Module.PROJECTS.value)]
    | Annotated[MilestoneEvent, Tag(Module.MILESTONES.value)]
    | Annotated[TasklistEvent, Tag(Module.TASKLISTS.value)]
    | Annotated[TaskEvent, Tag(Module.TASKS.value)]
    | Annotated[BugEvent, Tag(Module.BUGS.value)]
    | Annotated[UserEvent, Tag(Module.USERS.value)]
    | Annotated[TimesheetEvent, Tag(Module.TIMESHEETS.value)]
    | Annotated[DeletedEvent, Tag("deleted")],
    Discriminator(
        _event_tag,
        custom_error_type="invalid_module",
        custom_error_message="module must be one of: " + ", ".join(m.value for m in Module),
    ),
]

event_adapter: TypeAdapter[WebhookEvent] = TypeAdapter(WebhookEvent)
events_adapter: TypeAdapter[list[WebhookEvent]] = TypeAdapter(list[WebhookEvent])
