"""Apply a batch of change events in the caller's transaction.

For a batch, in a handful of set-based statements: skip events whose id was
already processed, keep per record only the newest version in the batch, write
it only where it is newer than the stored version (deletes become tombstones),
and resolve relations to other portal records. The consumer commits, then acks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from schemas import Module, QueueMessage
from schemas.envelope import DeletedEvent, ProjectEvent
from worker.db import Customer, Integration, SyncedRecord
from worker.rows import MODELS, RELATIONS, RowContext, customer_row, event_row
from worker.upsert import claim_events, upsert_newer

__all__ = ["Outcome", "apply_batch"]

APPLIED = "applied"
STALE = "stale"
DUPLICATE = "duplicate"
SKIPPED = "skipped"

# Set only when a record is first created: later source updates must not reset them.
_KEEP_ON_UPDATE: dict[type[SyncedRecord], tuple[str, ...]] = {
    MODELS[Module.TIMESHEETS]: ("billing_status",),
    MODELS[Module.USERS]: ("kind",),
}


@dataclass(frozen=True)
class Outcome:
    """What became of one message: applied, stale, duplicate or skipped."""

    event_id: str
    integration_id: str
    module: str
    action: str
    status: str


def apply_batch(session: Session, messages: Sequence[QueueMessage]) -> list[Outcome]:
    """Apply ``messages`` in ``session`` (not committed here); one outcome per message.

    Raises whatever the database raises; the caller rolls back and retries.
    """
    integrations = _live_integrations(session, {m.integration_id for m in messages})
    status = [SKIPPED] * len(messages)
    live = [i for i, m in enumerate(messages) if m.integration_id in integrations]
    claimed = claim_events(
        session, {(messages[i].integration_id, messages[i].event_id) for i in live}
    )

    fresh: list[int] = []
    for index in live:
        key = (messages[index].integration_id, messages[index].event_id)
        if key in claimed:
            claimed.discard(key)  # a second copy in the same batch is a duplicate
            fresh.append(index)
        else:
            status[index] = DUPLICATE

    for module in Module:
        of_module = [i for i in fresh if messages[i].event.module == module]
        if not of_module:
            continue
        winners = _newest_per_record(messages, of_module)
        written = _write_module(
            session, module, [messages[i] for i in winners.values()], integrations
        )
        for index in of_module:
            key = _record_key(messages[index])
            status[index] = APPLIED if winners[key] == index and key in written else STALE

    return [
        Outcome(m.event_id, m.integration_id, m.event.module.value, m.event.action.value, s)
        for m, s in zip(messages, status, strict=True)
    ]


def _live_integrations(session: Session, ids: set[str]) -> dict[str, RowContext]:
    rows = session.scalars(
        select(Integration).where(Integration.id.in_(ids), Integration.deleted_at.is_(None))
    )
    return {i.id: RowContext(i.organization_id, i.id, i.invoiced_before) for i in rows}


def _record_key(message: QueueMessage) -> tuple[str, str]:
    return (message.integration_id, message.event.data.id)


def _version(message: QueueMessage) -> tuple[Any, bool]:
    # At the same version a delete wins, as in the upsert.
    return (message.event.modified_at, isinstance(message.event, DeletedEvent))


def _newest_per_record(
    messages: Sequence[QueueMessage], indexes: Iterable[int]
) -> dict[tuple[str, str], int]:
    """For each record, the index of its newest event among ``indexes``."""
    newest: dict[tuple[str, str], int] = {}
    for index in indexes:
        key = _record_key(messages[index])
        current = newest.get(key)
        if current is None or _version(messages[index]) > _version(messages[current]):
            newest[key] = index
    return newest


def _write_module(
    session: Session,
    module: Module,
    winners: Sequence[QueueMessage],
    integrations: dict[str, RowContext],
) -> dict[tuple[str, str], int]:
    if module is Module.PROJECTS:
        _write_primary_clients(session, winners, integrations)
    rows = [event_row(m.event, integrations[m.integration_id]) for m in winners]
    _resolve_relations(session, module, rows)
    model = MODELS[module]
    keep = _KEEP_ON_UPDATE.get(model, ())
    written = upsert_newer(
        session, model, [r for r in rows if not r["deleted"]], keep_on_update=keep
    )
    written.update(upsert_newer(session, model, [r for r in rows if r["deleted"]]))
    return written


def _write_primary_clients(
    session: Session, messages: Iterable[QueueMessage], integrations: dict[str, RowContext]
) -> None:
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for message in messages:
        event = message.event
        if not isinstance(event, ProjectEvent) or event.data.primary_client is None:
            continue
        row = customer_row(event.data.primary_client, event, integrations[message.integration_id])
        key = (message.integration_id, row["source_id"])
        if key not in newest or row["source_modified_at"] > newest[key]["source_modified_at"]:
            newest[key] = row
    upsert_newer(session, Customer, list(newest.values()))


def _resolve_relations(session: Session, module: Module, rows: list[dict[str, Any]]) -> None:
    """Fill each row's foreign keys from the portal ids it names (None if absent)."""
    for relation in RELATIONS[module]:
        wanted = {
            (r["integration_id"], r[relation.source_column])
            for r in rows
            if r.get(relation.source_column)
        }
        ids = _ids_by_source(session, relation.target, wanted)
        for row in rows:
            if relation.source_column in row:
                source = (row["integration_id"], row[relation.source_column])
                row[relation.fk_column] = ids.get(source)


def _ids_by_source(
    session: Session, model: type[SyncedRecord], keys: set[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    if not keys:
        return {}
    table: Any = model
    stmt = select(table.integration_id, table.source_id, table.id).where(
        tuple_(table.integration_id, table.source_id).in_(list(keys))
    )
    return {(i, s): row_id for i, s, row_id in session.execute(stmt)}
