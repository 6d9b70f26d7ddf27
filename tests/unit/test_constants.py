"""Names written once: header names in the contract, statuses and reasons as constants,
and no HTTP route in what the domain says (the gateway says how to fix it in API terms)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import pytest

import schemas
import webhook_gateway
import worker
from schemas import QueueMessage, event_adapter
from schemas.headers import (
    ACTION_HEADER,
    EVENT_ID_HEADER,
    INTEGRATION_ID_HEADER,
    MODULE_HEADER,
    SOURCE_HEADER,
)
from worker.billing import PeriodOutcome
from worker.db import BillingStatus, IntegrationState, InvoiceStatus
from worker.integrations import RunKind, RunOutcome
from worker.sync import EventOutcome
from worker.sync.rules.reasons import REASONS


def _files(*packages: object) -> Iterator[Path]:
    for package in packages:
        for path in Path(getattr(package, "__file__", "") or "").parent.rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def _strings(path: Path) -> Iterator[ast.Constant]:
    """The string constants of a file that are not docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node


# -- headers ---------------------------------------------------------------------------


def test_billsync_header_names_are_written_only_in_the_contract() -> None:
    contract = Path(schemas.__file__).parent / "headers.py"
    spelled_out = [
        f"{path}:{node.lineno}"
        for path in _files(schemas, worker, webhook_gateway)
        if path != contract
        for node in _strings(path)
        if re.search(r"x-billsync-", node.value, re.IGNORECASE)
    ]
    assert spelled_out == []


def test_a_queue_message_carries_the_contracts_header_names() -> None:
    event = event_adapter.validate_python(
        {
            "module": "projects",
            "action": "created",
            "modified_at": "2026-11-24T10:15:00Z",
            "data": {"id": "P1", "name": "Website"},
        }
    )
    message = QueueMessage(
        event_id="e-1", integration_id="i-1", received_at=datetime.now(UTC), event=event
    )

    assert message.headers() == {
        EVENT_ID_HEADER: "e-1",
        INTEGRATION_ID_HEADER: "i-1",
        MODULE_HEADER: "projects",
        ACTION_HEADER: "created",
        SOURCE_HEADER: "webhook",
    }


# -- statuses and reasons ----------------------------------------------------------------

STATUSES: tuple[type[StrEnum], ...] = (
    BillingStatus,
    EventOutcome,
    IntegrationState,
    InvoiceStatus,
    PeriodOutcome,
    RunKind,
    RunOutcome,
)
STATUS_VALUES = {member.value for enum in STATUSES for member in enum} | set(REASONS)
# What names a status or a reason code, as an attribute, a variable or a keyword.
STATUS_NAMES = re.compile(r"(^|_)(status|outcome|kind|reason)$")


def test_the_enums_keep_the_stored_values() -> None:
    """Members equal the strings already in the database and the JSON."""
    assert set(RunOutcome) == {
        "pending", "running", "succeeded", "failed", "interrupted", "cancelled"
    }  # fmt: skip
    assert set(RunKind) == {"initial", "instant", "resume", "reconciliation"}
    assert set(BillingStatus) == {"unbilled", "invoiced"}
    assert set(InvoiceStatus) == {"issued", "void"}
    assert BillingStatus.INVOICED == "invoiced" and f"{InvoiceStatus.VOID}" == "void"


def _named(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _status_literals(path: Path) -> Iterator[tuple[int, str]]:
    """Status literals where a status is compared, assigned or passed by name."""
    for node in ast.walk(ast.parse(path.read_text())):
        pairs: list[tuple[str | None, ast.expr]] = []
        if isinstance(node, ast.Compare):
            name = _named(node.left)
            for right in node.comparators:
                items = right.elts if isinstance(right, ast.Tuple | ast.List | ast.Set) else [right]
                pairs += [(name, item) for item in items]
        elif isinstance(node, ast.keyword):
            pairs.append((node.arg, node.value))
        elif isinstance(node, ast.Assign):
            pairs += [(_named(target), node.value) for target in node.targets]
        for name, value in pairs:
            if (
                name is not None
                and STATUS_NAMES.search(name)
                and isinstance(value, ast.Constant)
                and value.value in STATUS_VALUES
            ):
                yield node.lineno, str(value.value)


@pytest.mark.parametrize(
    "path", sorted(_files(worker, webhook_gateway)), ids=lambda p: str(p.relative_to(p.parents[1]))
)
def test_statuses_and_reasons_are_written_as_their_constants(path: Path) -> None:
    assert list(_status_literals(path)) == []


# -- no HTTP in the domain -------------------------------------------------------------

# The webhook set-up guide is a document about the gateway's endpoint, shown by the API
# and the CLI alike; it names the integration edit the API offers.
HTTP_DOCUMENTS = {Path(worker.__file__).parent / "integrations" / "setup_guide.py"}


def test_the_domain_names_no_api_route() -> None:
    routes = [
        f"{path}:{node.lineno}: {node.value[:60]}"
        for path in _files(worker)
        if path not in HTTP_DOCUMENTS
        for node in _strings(path)
        if "/api/v1" in node.value or re.search(r"\b(POST|PUT|PATCH|DELETE)\b", node.value)
    ]
    assert routes == []
