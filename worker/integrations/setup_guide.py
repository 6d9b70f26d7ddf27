"""What an admin pastes into Zoho Projects so that its webhooks reach billsync.

Zoho Projects has no API to register webhooks: an admin fills in a form in Zoho
(Enterprise plan) and attaches the webhook to a rule. This module writes down,
per billsync module, what goes into that form, so the admin copies values
instead of translating billsync's webhook envelope into Zoho's vocabulary.

What Zoho's help pages show (and what they do not):

- The webhook form has a Name (100 characters), a URL to notify (1000), a Method
  (POST or GET), "Append <module> parameters" in a standard or a user-defined
  format (xml, json) whose values are chosen from the record's fields, and
  "Append custom parameters", key/value pairs meant for auth tokens (3000).
  https://help.zoho.com/portal/en/kb/projects/settings-in-zoho-projects/issue-tracker/automation/articles/issue-webhooks
  https://www.zoho.com/projects/help/bug-webhooks.html
- Issue webhooks are called from Business Rules (Actions → Call Webhooks); project,
  task and time-log webhooks from workflow rules (Add Action → Associate Webhook).
  https://help.zoho.com/portal/en/kb/projects/settings-in-zoho-projects/automation/project-automation/articles/project-automation-in-zoho-projects
  https://help.zoho.com/portal/en/kb/projects/settings-in-zoho-projects/automation/task-automation/articles/workflow-rules-for-tasks
  https://help.zoho.com/portal/en/kb/projects/settings-in-zoho-projects/automation/timesheet-automation/articles/workflow-rules-for-time-logs
- Zoho does not sign webhooks, so only token verification can work: the token
  goes in a custom parameter named ``token`` (the gateway reads ``?token=``).
  Where Zoho puts custom parameters of a POST (query string or body) is not
  documented; the form's Preview URL shows it, and ``url_with_token`` is the
  fallback that does not depend on it.
- Not found anywhere public: the placeholder text Zoho's field picker inserts for
  a field (the ``${Field Label}`` tokens here are a guess, flagged
  ``placeholders_confirmed: false``), how it renders dates, numbers and empty
  values, its Content-Type for a user-defined JSON body, any retry, and any
  webhook form for milestones, task lists or users.

The templates are one per action, not one with an action placeholder: the rule
trigger that fires a webhook is not a field of the record, so no field picker
value can say whether it was a create, an update or a delete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.api import (
    ModuleWebhookSetup,
    WebhookFieldKind,
    WebhookSetup,
    WebhookTemplate,
    WebhookTemplateField,
)
from schemas.headers import WEBHOOK_TOKEN_HEADER
from worker.db import Integration

__all__ = ["TOKEN_PARAMETER", "TOKEN_PLACEHOLDER", "webhook_setup"]

Action = Literal["created", "updated", "deleted"]

TOKEN_PARAMETER = "token"
# The token is shown once, at connect, and only its SHA-256 is stored: never here.
TOKEN_PLACEHOLDER = "<your webhook token>"
NOT_CONFIRMED = "not confirmed"

PLACEHOLDER_NOTE = (
    "Zoho's field picker inserts each field into the body for you; the exact placeholder "
    "text it inserts could not be confirmed from public documentation, so the ${…} tokens "
    "here name the field to pick: replace each with what the picker inserts for that field."
)

NOTES = (
    PLACEHOLDER_NOTE,
    "One webhook per module and action, each attached to the rule for that action: the "
    "action is not a record field Zoho could fill in.",
    "Values must arrive in billsync's formats (see each field's format): dates as "
    "YYYY-MM-DD, modified_at as ISO 8601 with a zone, ids as text. How Zoho renders dates, "
    "times and numbers in a webhook body is not confirmed.",
    "An optional field that Zoho sends empty is taken as absent; a required one sent empty "
    "is refused (422) with the whole event. "
    "The periodic reconciliation pull (BILLSYNC_RECONCILE_INTERVAL_SECONDS) brings over "
    "what a refused or lost webhook missed: Zoho documents no retries.",
    "The gateway answers 415 unless the request is Content-Type: application/json; which "
    "Content-Type Zoho sends with a user-defined JSON body is not confirmed.",
    "No event_id: Zoho has none to offer, so the gateway uses a hash of the event and a "
    "repeated identical event is applied once.",
)

FORMATS: dict[WebhookFieldKind, str] = {
    "id": "the record's id, as text",
    "text": "text",
    "email": "an email address",
    "date": "a date, YYYY-MM-DD",
    "datetime": "ISO 8601 date and time with a zone, e.g. 2026-11-24T10:15:00Z",
    "minutes": "whole minutes, e.g. 90",
    "decimal": "a number, e.g. 120.50",
    "boolean": "true or false",
    "currency": "a three-letter currency code, e.g. USD",
    "choice": "one of",
}


@dataclass(frozen=True)
class _Field:
    path: str
    label: str
    kind: WebhookFieldKind
    required: bool = False
    allowed: tuple[str, ...] = ()

    def view(self) -> WebhookTemplateField:
        text = FORMATS[self.kind]
        if self.allowed:
            text = f"{text}: {', '.join(self.allowed)}"
        return WebhookTemplateField(
            path=self.path,
            placeholder=_placeholder(self.label),
            required=self.required,
            kind=self.kind,
            allowed=list(self.allowed),
            format=text,
        )


@dataclass(frozen=True)
class _Module:
    module: Literal["projects", "milestones", "tasklists", "tasks", "bugs", "timesheets", "users"]
    zoho_module: str
    where: str
    triggers: dict[Action, str]
    fields: tuple[_Field, ...]
    child: bool = True
    caveats: tuple[str, ...] = field(default=())


MODIFIED = _Field("modified_at", "Last Modified Time", "datetime", required=True)
PROJECT_ID = _Field("data.project_id", "Project Id", "id", required=True)


def _user(prefix: str, label: str) -> tuple[_Field, ...]:
    return (
        _Field(f"data.{prefix}.id", f"{label} Id", "id"),
        _Field(f"data.{prefix}.name", label, "text"),
        _Field(f"data.{prefix}.email", f"{label} Email", "email"),
    )


def _workflow_triggers(noun: str, confirmed: set[Action]) -> dict[Action, str]:
    def say(action: Action, verb: str) -> str:
        text = f"the rule's trigger is: {noun} {verb}"
        return text if action in confirmed else f"{text} ({NOT_CONFIRMED})"

    return {
        "created": say("created", "created"),
        "updated": say("updated", "updated"),
        "deleted": say("deleted", "deleted"),
    }


MODULES: tuple[_Module, ...] = (
    _Module(
        module="projects",
        zoho_module="Projects",
        where=(
            "Settings → Automation → Workflow Rules → Projects → New Workflow Rule → Add Action → "
            "Associate Webhook (Enterprise plan). Trigger names on the Zoho Projects page: "
            f"{NOT_CONFIRMED} (Zoho's project rules elsewhere offer Created, Updated, Deleted)."
        ),
        triggers=_workflow_triggers("project", set()),
        fields=(
            _Field("data.id", "Project Id", "id", required=True),
            _Field("data.name", "Project Name", "text", required=True),
            _Field(
                "data.status",
                "Project Status",
                "choice",
                allowed=("active", "archived", "template"),
            ),
            _Field("data.currency_code", "Currency", "currency"),
            _Field(
                "data.billing_type",
                "Billing Method",
                "choice",
                allowed=(
                    "fixed_cost_for_project",
                    "based_on_project_hours",
                    "based_on_task_hours",
                    "based_on_staff_hours",
                ),
            ),
            _Field("data.rate", "Project Rate", "decimal"),
            _Field("data.budget_value", "Budget", "decimal"),
            *_user("owner", "Project Owner"),
            _Field("data.primary_client.id", "Client Company Id", "id"),
            _Field("data.primary_client.name", "Client Company", "text"),
            _Field("data.primary_client.email", "Client Email", "email"),
            _Field("data.primary_client.currency_code", "Client Currency", "currency"),
        ),
        child=False,
        caveats=(
            "A project syncs only with its primary client: without the primary_client lines "
            "the project is refused (no_primary_customer); with them empty, the event is 422.",
        ),
    ),
    _Module(
        module="milestones",
        zoho_module="Milestones (Phases)",
        where=(
            f"{NOT_CONFIRMED}: no Zoho help page on milestone or phase webhooks was found; look "
            "under Settings → Automation → Workflow Rules for a Phases tab with Associate Webhook."
        ),
        triggers=_workflow_triggers("phase", set()),
        fields=(
            _Field("data.id", "Phase Id", "id", required=True),
            PROJECT_ID,
            _Field("data.name", "Phase Name", "text", required=True),
            _Field("data.status", "Phase Status", "choice", allowed=("completed", "notcompleted")),
            _Field("data.start_date", "Start Date", "date"),
            _Field("data.end_date", "End Date", "date"),
        ),
    ),
    _Module(
        module="tasklists",
        zoho_module="Task Lists",
        where=(
            f"{NOT_CONFIRMED}: no Zoho help page on task-list webhooks was found; look under "
            "Settings → Automation → Workflow Rules for a Task Lists tab with Associate Webhook."
        ),
        triggers=_workflow_triggers("task list", set()),
        fields=(
            _Field("data.id", "Task List Id", "id", required=True),
            PROJECT_ID,
            _Field("data.name", "Task List Name", "text", required=True),
            _Field("data.milestone_id", "Phase Id", "id"),
        ),
    ),
    _Module(
        module="tasks",
        zoho_module="Tasks",
        where=(
            "Settings → Automation → Workflow Rules → Tasks → New Workflow Rule → Execute On "
            "(the trigger) → Add Action → Associate Webhook. Create is documented; update and "
            f"delete triggers: {NOT_CONFIRMED}."
        ),
        triggers=_workflow_triggers("task", {"created"}),
        fields=(
            _Field("data.id", "Task Id", "id", required=True),
            PROJECT_ID,
            _Field("data.name", "Task Name", "text", required=True),
            _Field("data.tasklist_id", "Task List Id", "id"),
            _Field("data.milestone_id", "Phase Id", "id"),
            _Field("data.status", "Status", "text"),
            _Field(
                "data.billing_type",
                "Billing Type",
                "choice",
                allowed=("Billable", "Non Billable", "None"),
            ),
            _Field("data.rate", "Rate Per Hour", "decimal"),
            *_user("owners[0]", "Owner"),
        ),
        caveats=(
            "Zoho's help says workflow rules do not fire on create for tasks of projects made "
            "from a project template: the pull brings those over.",
            "Only the first owner fits a picked field; the pull brings over every owner.",
        ),
    ),
    _Module(
        module="bugs",
        zoho_module="Issues",
        where=(
            "Settings → Issue Tracker → Webhooks → Add Webhook (Enterprise plan); then Settings → "
            "Issue Tracker → Business Rules → Rule details → Criteria → Actions → Call Webhooks. "
            f"Which events a business rule runs on: {NOT_CONFIRMED}."
        ),
        triggers={
            "created": f"a business rule for new issues ({NOT_CONFIRMED})",
            "updated": f"a business rule for edited issues ({NOT_CONFIRMED})",
            "deleted": f"a business rule for deleted issues ({NOT_CONFIRMED})",
        },
        fields=(
            _Field("data.id", "Issue Id", "id", required=True),
            PROJECT_ID,
            _Field("data.title", "Issue Title", "text", required=True),
            _Field("data.status", "Status", "text"),
            _Field("data.severity", "Severity", "text"),
            *_user("assignee", "Assignee"),
        ),
    ),
    _Module(
        module="users",
        zoho_module="Users",
        where=(
            f"{NOT_CONFIRMED}: no Zoho help page on user webhooks or user workflow rules was "
            "found; users may only arrive by the pull."
        ),
        triggers={
            "created": f"a user is added ({NOT_CONFIRMED})",
            "updated": f"a user is edited ({NOT_CONFIRMED})",
            "deleted": f"a user is removed ({NOT_CONFIRMED})",
        },
        fields=(
            _Field("data.id", "User Id", "id", required=True),
            _Field("data.name", "User Name", "text", required=True),
            _Field("data.email", "Email", "email", required=True),
            _Field(
                "data.role",
                "Role",
                "choice",
                allowed=("admin", "manager", "employee", "contractor"),
            ),
            _Field("data.active", "Active", "boolean"),
        ),
        child=False,
    ),
    _Module(
        module="timesheets",
        zoho_module="Time Logs",
        where=(
            "Settings → Automation → Workflow Rules → Time Logs → New Workflow Rule → Based on "
            "User Action (a time log added or edited; Zoho's overview also names trashed) → "
            "Add Action → Associate Webhook. The time-log webhook form and its fields: "
            f"{NOT_CONFIRMED}."
        ),
        triggers={
            "created": "the rule runs when a time log is added",
            "updated": "the rule runs when a time log is edited",
            "deleted": f"the rule runs when a time log is trashed ({NOT_CONFIRMED})",
        },
        fields=(
            _Field("data.id", "Log Id", "id", required=True),
            PROJECT_ID,
            _Field("data.log_date", "Log Date", "date", required=True),
            _Field("data.minutes", "Log Minutes", "minutes", required=True),
            _Field(
                "data.bill_status",
                "Billing Status",
                "choice",
                required=True,
                allowed=("Billable", "Non Billable"),
            ),
            _Field(
                "data.approval_status",
                "Approval Status",
                "choice",
                required=True,
                allowed=("Approved", "Pending", "Unapproved", "Rejected"),
            ),
            _Field("data.owner.id", "User Id", "id", required=True),
            _Field("data.owner.name", "User Name", "text", required=True),
            _Field("data.owner.email", "User Email", "email", required=True),
            _Field("data.task_id", "Task Id", "id"),
            _Field("data.bug_id", "Issue Id", "id"),
            _Field("data.name", "Log Title", "text"),
            _Field("data.notes", "Notes", "text"),
        ),
        caveats=(
            "minutes must be whole minutes; Zoho shows log hours as HH:MM, and whether its "
            "picker offers minutes is not confirmed.",
            "A log is on a task, on an issue or on neither (a general log): task_id and bug_id "
            "may both be in the body; the one Zoho leaves empty is taken as absent.",
        ),
    ),
)


def webhook_setup(integration: Integration, base_url: str) -> WebhookSetup:
    """Every module's Zoho webhook for ``integration``, reached at ``base_url``.

    Pure: reads the integration, never its secrets (the token is only hashed).
    """
    token_mode = integration.verification == "token"
    url = f"{base_url.rstrip('/')}/webhooks/{integration.id}"
    selected = set(integration.modules or ())
    modules = [
        _module_setup(spec, url, token_mode, spec.module in selected or spec.module == "projects")
        for spec in MODULES
    ]
    return WebhookSetup(
        integration_id=integration.id,
        verification="token" if token_mode else "signature",
        token_parameter=TOKEN_PARAMETER if token_mode else None,
        token_header=WEBHOOK_TOKEN_HEADER if token_mode else None,
        warning=_warning(integration, token_mode),
        notes=list(NOTES),
        modules=modules,
    )


def _warning(integration: Integration, token_mode: bool) -> str | None:
    if integration.deleted_at is not None:
        return (
            "This integration was deleted: its webhooks are answered 409. Connect a new "
            'integration with "verification": "token" and set up its webhooks.'
        )
    if token_mode:
        return None
    return (
        "This integration verifies Standard Webhooks signatures, and Zoho Projects cannot sign "
        "its webhooks: every request from Zoho would be refused (401). The verification cannot "
        "be changed after connecting (PATCH /api/v1/integrations/<id> does not accept it): "
        'delete this integration and connect again with "verification": "token" (synced '
        "projects of a deleted integration stay as standalone projects)."
    )


def _module_setup(spec: _Module, url: str, token_mode: bool, selected: bool) -> ModuleWebhookSetup:
    caveats = list(spec.caveats)
    if spec.module == "timesheets" and not selected:
        caveats.insert(
            0,
            "The integration does not include the timesheets module: time logs are refused "
            "(module_not_selected) until it is added with PATCH /api/v1/integrations/<id>.",
        )
    return ModuleWebhookSetup(
        module=spec.module,
        zoho_module=spec.zoho_module,
        where=spec.where,
        url=url,
        url_with_token=f"{url}?{TOKEN_PARAMETER}={TOKEN_PLACEHOLDER}" if token_mode else None,
        custom_parameters={TOKEN_PARAMETER: TOKEN_PLACEHOLDER} if token_mode else {},
        templates=[_template(spec, action) for action in ("created", "updated", "deleted")],
        placeholders_confirmed=False,
        note=PLACEHOLDER_NOTE,
        caveats=caveats,
    )


def _template(spec: _Module, action: Action) -> WebhookTemplate:
    """Required fields first; a delete carries only the record's reference."""
    if action == "deleted":
        reference = {"data.id", "data.project_id"} if spec.child else {"data.id"}
        fields = [MODIFIED, *(f for f in spec.fields if f.path in reference)]
    else:
        fields = [MODIFIED, *spec.fields]
    fields.sort(key=lambda f: not f.required)  # stable: the listed order within each group
    body: dict[str, Any] = {"module": spec.module, "action": action}
    for item in fields:
        _put(body, item.path, _placeholder(item.label))
    return WebhookTemplate(
        action=action,
        trigger=spec.triggers[action],
        body_template=json.dumps(body, indent=2, ensure_ascii=False),
        required_fields=[f.path for f in fields if f.required],
        fields=[f.view() for f in fields],
    )


def _placeholder(label: str) -> str:
    return "${" + label + "}"


def _put(body: dict[str, Any], path: str, value: str) -> None:
    """Set ``value`` at a dotted path; ``name[0]`` is the first item of a list."""
    *parents, last = path.split(".")
    node: dict[str, Any] = body
    for part in parents:
        if part.endswith("[0]"):
            items = node.setdefault(part.removesuffix("[0]"), [{}])
            node = items[0]
        else:
            node = node.setdefault(part, {})
    node[last] = value
