"""The Zoho Projects webhook setup: what an admin pastes into Zoho, per module and action."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from pydantic import BaseModel

from schemas import Module, event_adapter
from schemas.api import ModuleWebhookSetup, WebhookSetup, WebhookTemplate
from schemas.payloads import (
    BugData,
    MilestoneData,
    ProjectData,
    TaskData,
    TasklistData,
    TimesheetData,
    UserData,
)
from tests.webhook_templates import fill
from worker.db import Integration
from worker.integrations.setup_guide import webhook_setup

BASE_URL = "https://billsync.example.com"
PLACEHOLDER = re.compile(r"^\$\{[^${}]+\}$")
PAYLOADS: dict[str, type[BaseModel]] = {
    "projects": ProjectData,
    "milestones": MilestoneData,
    "tasklists": TasklistData,
    "tasks": TaskData,
    "bugs": BugData,
    "users": UserData,
    "timesheets": TimesheetData,
}
ZOHO_NAMES = {
    "projects": "Projects",
    "milestones": "Milestones (Phases)",
    "tasklists": "Task Lists",
    "tasks": "Tasks",
    "bugs": "Issues",
    "users": "Users",
    "timesheets": "Time Logs",
}


def integration(verification: str = "token", modules: list[str] | None = None) -> Integration:
    return Integration(
        id="5f0c1d2e-0000-4000-8000-000000000001",
        verification=verification,
        modules=modules if modules is not None else ["projects", "timesheets"],
        deleted_at=None,
    )


def setup(verification: str = "token", **kwargs: Any) -> WebhookSetup:
    return webhook_setup(integration(verification, **kwargs), BASE_URL)


def module(name: str, answer: WebhookSetup | None = None) -> ModuleWebhookSetup:
    return next(m for m in (answer or setup()).modules if m.module == name)


def template(name: str, action: str) -> WebhookTemplate:
    return next(t for t in module(name).templates if t.action == action)


def all_templates() -> list[tuple[str, WebhookTemplate]]:
    return [(m.module, t) for m in setup().modules for t in m.templates]


def required_paths(model: type[BaseModel], prefix: str = "data") -> set[str]:
    """The contract's required fields, nested models included."""
    paths = set()
    for name, info in model.model_fields.items():
        if not info.is_required():
            continue
        nested = nested_model(info.annotation)
        if nested is not None:
            paths |= required_paths(nested, f"{prefix}.{name}")
        else:
            paths.add(f"{prefix}.{name}")
    return paths


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found |= leaves(item, f"{prefix}.{key}" if prefix else key)
        return found
    if isinstance(value, list):
        return leaves(value[0], f"{prefix}[0]")
    return {prefix: value}


def contract_has(model: type[BaseModel], path: str) -> bool:
    head, _, rest = path.partition(".")
    info = model.model_fields.get(head.removesuffix("[0]"))
    if info is None or not rest:
        return info is not None
    nested = nested_model(info.annotation)
    return nested is not None and contract_has(nested, rest)


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None`` or ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = nested_model(argument)
        if found is not None:
            return found
    return None


# -- every module, in Zoho's words -----------------------------------------------------


def test_every_billsync_module_is_listed_once() -> None:
    assert sorted(m.module for m in setup().modules) == sorted(m.value for m in Module)


def test_each_module_names_its_zoho_module() -> None:
    assert {m.module: m.zoho_module for m in setup().modules} == ZOHO_NAMES


def test_each_module_has_a_created_an_updated_and_a_deleted_template() -> None:
    for item in setup().modules:
        assert [t.action for t in item.templates] == ["created", "updated", "deleted"]


def test_a_template_has_its_module_and_action_filled_in() -> None:
    for name, chosen in all_templates():
        body = json.loads(chosen.body_template)
        assert (body["module"], body["action"]) == (name, chosen.action)


def test_every_module_is_posted() -> None:
    assert {m.method for m in setup().modules} == {"POST"}


@pytest.mark.parametrize("name", ["milestones", "tasklists", "users"])
def test_where_says_not_confirmed_when_zoho_documents_no_webhook(name: str) -> None:
    assert "not confirmed" in module(name).where


def test_time_logs_are_configured_in_their_workflow_rules() -> None:
    assert "Time Logs" in module("timesheets").where
    assert "Associate Webhook" in module("timesheets").where


# -- placeholders ---------------------------------------------------------------------


def test_every_value_in_a_body_template_is_a_placeholder() -> None:
    for _, chosen in all_templates():
        body = json.loads(chosen.body_template)
        del body["module"], body["action"]
        assert all(PLACEHOLDER.match(v) for v in leaves(body).values()), chosen.body_template


def test_modified_at_is_the_last_modified_time() -> None:
    for _, chosen in all_templates():
        assert json.loads(chosen.body_template)["modified_at"] == "${Last Modified Time}"


def test_the_placeholders_are_flagged_unconfirmed_with_a_note() -> None:
    for item in setup().modules:
        assert item.placeholders_confirmed is False
        assert "could not be confirmed" in item.note
        assert "field picker" in item.note


def test_the_fields_list_names_each_placeholder_of_the_body() -> None:
    for _, chosen in all_templates():
        body = leaves(json.loads(chosen.body_template))
        assert {f.path: f.placeholder for f in chosen.fields} == {
            k: v for k, v in body.items() if k not in ("module", "action")
        }


# -- the binding contract ---------------------------------------------------------------


@pytest.mark.parametrize("action", ["created", "updated"])
def test_every_required_field_of_the_contract_is_a_placeholder(action: str) -> None:
    for name, payload in PAYLOADS.items():
        chosen = template(name, action)
        assert set(chosen.required_fields) == {"modified_at", *required_paths(payload)}, name


def test_only_fields_of_the_contract_are_in_data() -> None:
    for name, chosen in all_templates():
        for item in chosen.fields:
            if item.path.startswith("data."):
                path = item.path.removeprefix("data.")
                assert contract_has(PAYLOADS[name], path), f"{name}: {item.path}"


def test_required_fields_come_first() -> None:
    for _, chosen in all_templates():
        flags = [f.required for f in chosen.fields]
        assert flags == sorted(flags, reverse=True), chosen.body_template


def test_a_delete_carries_only_the_reference() -> None:
    assert json.loads(template("tasks", "deleted").body_template)["data"] == {
        "id": "${Task Id}",
        "project_id": "${Project Id}",
    }
    assert json.loads(template("projects", "deleted").body_template)["data"] == {
        "id": "${Project Id}"
    }


def test_choice_fields_list_the_values_billsync_accepts() -> None:
    bill_status = next(f for f in template("timesheets", "created").fields if "bill" in f.path)
    assert bill_status.allowed == ["Billable", "Non Billable"]
    assert "Billable, Non Billable" in bill_status.format


def test_every_template_filled_with_values_of_the_right_type_is_a_valid_event() -> None:
    for _, chosen in all_templates():
        event = event_adapter.validate_python(fill(chosen))
        assert event.action == chosen.action


# -- token and signature mode ---------------------------------------------------------


def test_token_mode_points_at_the_integrations_webhook_url() -> None:
    for item in setup().modules:
        assert item.url == f"{BASE_URL}/webhooks/{integration().id}"


def test_token_mode_sends_the_token_as_a_custom_parameter_named_token() -> None:
    for item in setup().modules:
        assert item.custom_parameters == {"token": "<your webhook token>"}


def test_token_mode_offers_the_url_with_the_token_parameter_in_it() -> None:
    assert module("tasks").url_with_token == (
        f"{BASE_URL}/webhooks/{integration().id}?token=<your webhook token>"
    )


def test_token_mode_names_the_header_alternative() -> None:
    answer = setup()
    assert (answer.token_parameter, answer.token_header) == ("token", "X-Billsync-Token")
    assert answer.warning is None


def test_a_trailing_slash_in_the_base_url_is_not_doubled() -> None:
    answer = webhook_setup(integration(), BASE_URL + "/")
    assert answer.modules[0].url == f"{BASE_URL}/webhooks/{integration().id}"


def test_signature_mode_warns_that_zoho_cannot_sign() -> None:
    warning = setup("signature").warning
    assert warning is not None
    assert "cannot sign" in warning
    assert '"verification": "token"' in warning


def test_signature_mode_says_the_verification_cannot_be_changed_in_place() -> None:
    warning = setup("signature").warning or ""
    assert "PATCH" in warning and "does not accept" in warning


def test_signature_mode_has_no_token_parameter() -> None:
    for item in setup("signature").modules:
        assert item.custom_parameters == {}
        assert item.url_with_token is None


def test_time_logs_warn_when_the_integration_lacks_the_timesheets_module() -> None:
    caveats = module("timesheets", setup(modules=["projects"])).caveats
    assert any("module_not_selected" in c for c in caveats)


def test_time_logs_do_not_warn_when_the_timesheets_module_is_selected() -> None:
    assert not any("module_not_selected" in c for c in module("timesheets").caveats)
