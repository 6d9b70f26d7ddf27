"""Apply a batch of change events in the caller's transaction.

For a batch, in a handful of set-based statements per module: skip events whose id
was already processed; keep per record only the newest version in the batch; let
the module's rules refuse what may not sync (into the error summary) and write the
rest where it is newer than the stored version (deletes become tombstones). Modules
go in dependency order, and records that were refused only because a dependency was
missing are applied from their kept payload as soon as that dependency is written.
The consumer commits, then acks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas import Module, QueueMessage, event_adapter
from schemas.envelope import DeletedEvent
from worker.db import Integration
from worker.error_summary import open_waiting, record_refusals, resolve_records
from worker.rows import RowContext
from worker.upsert import claim_events
from worker.writers.children import write_children
from worker.writers.common import BatchContext, Key, ModuleResult, record_key
from worker.writers.projects import write_projects
from worker.writers.timesheets import write_timesheets
from worker.writers.users import write_users

__all__ = ["Outcome", "apply_batch"]

APPLIED = "applied"
REFUSED = "refused"
STALE = "stale"
DUPLICATE = "duplicate"
SKIPPED = "skipped"

Writer = Callable[[BatchContext, Sequence[QueueMessage]], ModuleResult]

WRITERS: dict[Module, Writer] = {
    Module.PROJECTS: write_projects,
    Module.USERS: write_users,
    Module.MILESTONES: lambda b, m: write_children(b, Module.MILESTONES, m),
    Module.TASKLISTS: lambda b, m: write_children(b, Module.TASKLISTS, m),
    Module.TASKS: lambda b, m: write_children(b, Module.TASKS, m),
    Module.BUGS: lambda b, m: write_children(b, Module.BUGS, m),
    Module.TIMESHEETS: write_timesheets,
}

# Whose arrival can heal a refusal of the module (see rules.reasons.Reason.heals).
DEPENDENCIES: dict[Module, tuple[Module, ...]] = {
    Module.MILESTONES: (Module.PROJECTS,),
    Module.TASKLISTS: (Module.PROJECTS,),
    Module.TASKS: (Module.PROJECTS,),
    Module.BUGS: (Module.PROJECTS,),
    Module.TIMESHEETS: (Module.PROJECTS, Module.TASKS, Module.BUGS),
}


@dataclass(frozen=True)
class Outcome:
    """What became of one message: applied, refused, stale, duplicate or skipped."""

    event_id: str
    integration_id: str
    module: str
    action: str
    status: str


def apply_batch(session: Session, messages: Sequence[QueueMessage]) -> list[Outcome]:
    """Apply ``messages`` in ``session`` (not committed here); one outcome per message.

    Raises whatever the database raises; the caller rolls back and retries.
    """
    batch = BatchContext(session, _live_integrations(session, {m.integration_id for m in messages}))
    status = [SKIPPED] * len(messages)
    fresh = _claim(batch, messages, status)

    written: dict[Module, set[Key]] = {}
    for module in Module:
        indexes = [i for i in fresh if messages[i].event.module == module]
        winners = _newest_per_record(messages, indexes)
        healing = _waiting(batch, module, written, exclude=winners.keys())
        if not winners and not healing:
            continue
        refusals_before = len(batch.refusals)
        result = WRITERS[module](batch, [messages[i] for i in winners.values()] + healing)
        _drop_repeated_refusals(batch, refusals_before, {record_key(m) for m in healing})
        written[module] = result.applied
        _resolve_applied(batch, module, result.applied)
        for index in indexes:
            key = _key(messages[index])
            if key in result.refused and winners[key] == index:
                status[index] = REFUSED
            elif key in result.applied and winners[key] == index:
                status[index] = APPLIED
            else:
                status[index] = STALE
    record_refusals(session, batch.refusals)
    return [
        Outcome(m.event_id, m.integration_id, m.event.module.value, m.event.action.value, s)
        for m, s in zip(messages, status, strict=True)
    ]


def _claim(batch: BatchContext, messages: Sequence[QueueMessage], status: list[str]) -> list[int]:
    """Indexes of the messages seen for the first time; marks the rest duplicate."""
    live = [i for i, m in enumerate(messages) if m.integration_id in batch.integrations]
    claimed = claim_events(
        batch.session, {(messages[i].integration_id, messages[i].event_id) for i in live}
    )
    fresh = []
    for index in live:
        key = (messages[index].integration_id, messages[index].event_id)
        if key in claimed:
            claimed.discard(key)  # a second copy in the same batch is a duplicate
            fresh.append(index)
        else:
            status[index] = DUPLICATE
    return fresh


def _live_integrations(session: Session, ids: set[str]) -> dict[str, RowContext]:
    rows = session.scalars(
        select(Integration).where(Integration.id.in_(ids), Integration.deleted_at.is_(None))
    )
    return {
        i.id: RowContext(
            organization_id=i.organization_id,
            integration_id=i.id,
            invoiced_before=i.invoiced_before,
            modules=frozenset(i.modules or ()),
            field_map=dict(i.field_map or {}),
            customer_duplication=i.customer_duplication,
        )
        for i in rows
    }


def _key(message: QueueMessage) -> Key:
    return record_key(message)


def _version(message: QueueMessage) -> tuple[Any, bool]:
    # At the same version a delete wins, as in the upsert.
    return (message.event.modified_at, isinstance(message.event, DeletedEvent))


def _newest_per_record(messages: Sequence[QueueMessage], indexes: Iterable[int]) -> dict[Key, int]:
    """For each record, the index of its newest event among ``indexes``."""
    newest: dict[Key, int] = {}
    for index in indexes:
        key = _key(messages[index])
        current = newest.get(key)
        if current is None or _version(messages[index]) > _version(messages[current]):
            newest[key] = index
    return newest


def _waiting(
    batch: BatchContext, module: Module, written: dict[Module, set[Key]], *, exclude: Iterable[Key]
) -> list[QueueMessage]:
    """Refused records of ``module`` whose missing dependency was written in this batch."""
    arrived: dict[str, set[str]] = {}
    for dependency in DEPENDENCIES.get(module, ()):
        for integration_id, source_id in written.get(dependency, ()):
            arrived.setdefault(integration_id, set()).add(source_id)
    skip = set(exclude)
    healing = []
    for integration_id, source_ids in arrived.items():
        for error in open_waiting(batch.session, integration_id, module.value, source_ids):
            if (integration_id, error.source_id) in skip or not error.last_payload:
                continue
            skip.add((integration_id, error.source_id))
            event = event_adapter.validate_python(error.last_payload)
            healing.append(
                QueueMessage(
                    event_id=f"heal-{error.id}",
                    integration_id=integration_id,
                    event=event,
                    source="replay",
                )
            )
    return healing


def _drop_repeated_refusals(batch: BatchContext, since: int, healing: set[Key]) -> None:
    """A heal attempt that is refused again for the same reason is not a new refusal."""
    if not healing:
        return
    batch.refusals[since:] = [
        r for r in batch.refusals[since:] if (r.integration_id, r.source_id) not in healing
    ]


def _resolve_applied(batch: BatchContext, module: Module, applied: set[Key]) -> None:
    by_integration: dict[str, list[str]] = {}
    for integration_id, source_id in applied:
        by_integration.setdefault(integration_id, []).append(source_id)
    for integration_id, source_ids in by_integration.items():
        resolve_records(batch.session, integration_id, module.value, source_ids)
