"""One error tree: every exception billsync defines is a BillsyncError, in a family that
says what the caller should do, and each is raised or caught somewhere."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import webhook_gateway
import worker
from webhook_gateway.errors import ApiError
from worker.errors import (
    BillsyncError,
    ConfigurationError,
    Conflict,
    NotFound,
    PermanentError,
    Refused,
    Unavailable,
)

FAMILIES = (NotFound, Conflict, Refused, Unavailable, ConfigurationError, PermanentError)
ROOTS = (worker, webhook_gateway)


def _modules() -> Iterator[ModuleType]:
    for package in ROOTS:
        yield package
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            # Migrations are frozen text; __main__ runs the CLI when imported.
            if ".migrations" in info.name or info.name.endswith("__main__"):
                continue
            yield importlib.import_module(info.name)


def _exception_classes() -> list[type[BaseException]]:
    found = {
        obj
        for module in _modules()
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == module.__name__
    }
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


EXCEPTIONS = _exception_classes()


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_the_walk_finds_the_exceptions_of_every_layer() -> None:
    modules = {cls.__module__.split(".")[1] for cls in EXCEPTIONS if "." in cls.__module__}
    assert {"errors", "pull", "billing", "portal", "db", "cli", "signatures"} <= modules


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=_name)
def test_every_exception_class_is_a_billsync_error(cls: type[BaseException]) -> None:
    assert issubclass(cls, BillsyncError)


@pytest.mark.parametrize("cls", [c for c in EXCEPTIONS if c is not BillsyncError], ids=_name)
def test_every_error_belongs_to_a_family_or_is_an_http_answer(cls: type[BaseException]) -> None:
    """The family tells the caller what to do; the gateway's answers are already decided."""
    if cls in FAMILIES:
        assert cls.__bases__ == (BillsyncError,)
        return
    in_families = [family for family in FAMILIES if issubclass(cls, family)]
    is_answer = issubclass(cls, ApiError) or cls.__module__ == "webhook_gateway.status_page"
    assert len(in_families) + is_answer == 1, f"{_name(cls)}: {in_families}, answer={is_answer}"


def _source_files() -> Iterator[Path]:
    for package in ROOTS:
        for path in Path(package.__file__ or "").parent.rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def _references() -> dict[str, int]:
    """How often each name is used in code: not counting imports and class statements."""
    counts: dict[str, int] = {}
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            name = (
                node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else None
            )
            if name is not None:
                counts[name] = counts.get(name, 0) + 1
    return counts


def test_every_exception_class_is_raised_caught_or_a_family() -> None:
    used = _references()
    unused = [_name(cls) for cls in EXCEPTIONS if not used.get(cls.__name__)]
    assert unused == [], "exception classes nobody raises, catches or derives from"


def test_the_error_tree_imports_nothing_of_ours() -> None:
    ours = {"worker", "webhook_gateway", "schemas"}
    imported: list[str] = []
    for node in ast.walk(ast.parse(Path(inspect.getfile(BillsyncError)).read_text())):
        if isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert [name for name in imported if name.split(".")[0] in ours] == []


def test_the_cli_turns_every_not_found_and_conflict_into_a_message() -> None:
    """``operator_errors`` catches the families, so a new refusal needs no new clause."""
    import click

    from worker.billing import NothingToInvoice
    from worker.cli import operator_errors
    from worker.integrations import SourceMissing

    for error in (NotFound("no project 7"), NothingToInvoice("nothing"), SourceMissing("i-1")):
        with pytest.raises(click.ClickException) as raised, operator_errors():
            raise error
        assert raised.value.message == str(error)
