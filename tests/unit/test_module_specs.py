"""The module registry: one spec per portal module, dependencies before dependents, and
specs that agree with the contract and the tables they name."""

from __future__ import annotations

import typing
from dataclasses import replace
from enum import StrEnum

import pytest

from schemas import Module, WebhookEvent
from worker.sync import MODULES, PROJECT_RELATION, ModuleSpec, registered, spec_for


def _upsert_payloads() -> dict[str, type]:
    """{module: payload class} as the envelope's union carries created/updated events."""
    members = typing.get_args(typing.get_args(WebhookEvent)[0])
    payloads = {}
    for member in members:
        event = typing.get_args(member)[0]
        (module,) = typing.get_args(event.model_fields["module"].annotation) or (None,)
        if module is not None:
            payloads[module.value] = event.model_fields["data"].annotation
    return payloads


def test_every_module_has_exactly_one_spec() -> None:
    assert list(MODULES) == list(Module)
    assert all(spec.module is module for module, spec in MODULES.items())
    assert [spec_for(m) for m in Module] == list(MODULES.values())


def test_the_registry_order_puts_dependencies_first() -> None:
    seen: set[Module] = set()
    for module, spec in MODULES.items():
        assert set(spec.dependencies) <= seen, f"{module.value} before its dependencies"
        seen.add(module)


def test_each_spec_names_its_modules_payload_from_the_contract() -> None:
    payloads = _upsert_payloads()
    assert {m.value: s.payload for m, s in MODULES.items()} == payloads


def test_records_of_a_project_have_the_project_relation_and_only_they() -> None:
    for spec in MODULES.values():
        named = any(r.source_column == "project_source_id" for r in spec.relations)
        assert spec.per_project == named == (PROJECT_RELATION in spec.relations), spec.module


def test_relations_name_columns_of_the_modules_table() -> None:
    for spec in MODULES.values():
        for relation in spec.relations:
            assert hasattr(spec.model, relation.fk_column), (spec.module, relation)
            assert hasattr(spec.model, relation.source_column), (spec.module, relation)


def test_every_module_is_read_somewhere() -> None:
    for spec in MODULES.values():
        assert spec.paths or spec.windowed, spec.module
        assert not spec.windowed or spec.per_project, spec.module


def test_only_time_logs_are_optional() -> None:
    assert [s.module for s in MODULES.values() if s.optional] == [Module.TIMESHEETS]
    assert not spec_for(Module.TIMESHEETS).synced_for({"projects"})
    assert spec_for(Module.TIMESHEETS).synced_for({"projects", "timesheets"})
    assert spec_for(Module.TASKS).synced_for(set())


class _Extra(StrEnum):
    GADGETS = "gadgets"


def _gadgets(**changes: object) -> ModuleSpec:
    base = replace(spec_for(Module.TASKS), module=_Extra.GADGETS)  # type: ignore[arg-type]
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_registered_spec_comes_last_and_goes_when_the_block_ends() -> None:
    spec = _gadgets()
    with registered(spec):
        assert list(MODULES.values())[-1] is spec
        assert spec_for(spec.module) is spec
    assert list(MODULES) == list(Module)


def test_a_module_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="registered already"):
        with registered(spec_for(Module.TASKS)):
            pass
    assert list(MODULES) == list(Module)


def test_a_spec_whose_dependency_is_not_registered_is_refused() -> None:
    lonely = _gadgets(dependencies=(_Extra.GADGETS,))
    with pytest.raises(ValueError, match="unregistered gadgets"):
        with registered(lonely):
            pass
    assert list(MODULES) == list(Module)
