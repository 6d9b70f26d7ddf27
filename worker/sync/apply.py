"""Apply a batch of change events in the caller's transaction.

Events of a disabled integration are parked (kept unapplied) instead.

For a batch, in a handful of set-based statements per module: skip events whose id
was already processed; keep per record only the newest version in the batch; let
the module's rules refuse what may not sync (into the error summary) and write the
rest where it is newer than the stored version (deletes become tombstones). Modules
go in the registry's order (``worker.sync.modules``, dependencies first), each written
by its spec's writer, and records that were refused only because a dependency was
missing are applied from their kept payload as soon as that dependency is written.
The consumer commits, then acks.

What holds with any number of workers applying batches at once:

- **Exactly-once effect.** Each (integration, event id) is claimed in the
  processed-event ledger in the same transaction as its effect, so a redelivered or
  resent event, or one taken by two workers, changes nothing the second time.
- **Newest version wins, not arrival order.** Per record the stored version only
  moves forward (``source_modified_at``, a delete winning a tie), in the upsert's own
  ``WHERE``; an older event arriving later is ``stale``. Order between records is not
  kept and need not be.
- **Nothing waits for a dependency that is there.** Dependency locks
  (``worker.sync.writers.locks``) make a refusal for a missing project, task or bug and
  the writing of that record see each other, whichever commits first; the refusal is
  healed by the writer, or never made.
- **Errors are resolved by version.** Applying a version resolves only the error-summary
  rows about that version or older, checked in the ``UPDATE`` itself, so a newer
  refusal committed meanwhile by another worker stays open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from schemas import Module, QueueMessage
from schemas.envelope import DeletedEvent
from worker.db import Integration, IntegrationState, ParkedEvent, SyncError, utcnow
from worker.sync.activity import EventOutcome, record_activity
from worker.sync.columns import RowContext
from worker.sync.error_summary import (
    open_error_modules,
    open_waiting,
    record_refusals,
    resolve_records,
    resolve_unchanged,
)
from worker.sync.modules import MODULES, ModuleSpec
from worker.sync.statistics import note_inserted
from worker.sync.upsert import claim_events, insert_missing, is_postgresql
from worker.sync.writers.common import (
    BatchContext,
    Key,
    ModuleResult,
    backfill_links,
    record_key,
    relation_keys,
)
from worker.sync.writers.locks import DependencyLocks

__all__ = ["Outcome", "apply_batch"]


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
    # A snapshot: a module registered meanwhile (tests do) waits for the next batch.
    specs = list(MODULES.values())
    live, paused = _integrations(session, {m.integration_id for m in messages})
    batch = BatchContext(session, live, tuple(s.model for s in specs if s.per_project))
    status: list[str] = [EventOutcome.SKIPPED] * len(messages)
    _park(session, messages, paused, status)
    # Before the claim and every lookup, in one sorted go (see worker.sync.writers.locks),
    # with the event-id locks the claim needs.
    locks = DependencyLocks(session)
    locks.take((m for m in messages if m.integration_id in live), claiming=True)
    fresh = _claim(batch, messages, status)
    # After the locks: a refusal waiting for a record this batch writes is committed by
    # now, or made only after this batch commits (see worker.sync.writers.locks).
    fresh_integrations = {messages[i].integration_id for i in fresh}
    batch.open_errors = open_error_modules(
        session, fresh_integrations, [s.module.value for s in specs]
    )
    _preload(batch, specs, [messages[i] for i in fresh])

    written: dict[Module, set[Key]] = {}
    for spec in specs:
        module = spec.module
        indexes = [i for i in fresh if messages[i].event.module == module]
        winners = _newest_per_record(messages, indexes)
        waiting = _waiting(batch, spec, written)
        healing = _heal_unless_outdated(messages, winners, [m for m, _ in waiting.values()])
        if not winners and not healing:
            continue
        if spec.on_outdated is not None:
            spec.on_outdated(
                batch, [messages[i] for i in indexes if winners.get(_key(messages[i])) != i]
            )
        if locks.take(healing):  # healed records may be waited for in turn
            # Waiting for those locks, refusals may have been committed since the check.
            batch.open_errors = open_error_modules(
                session, fresh_integrations, [s.module.value for s in specs]
            )
        refusals_before = len(batch.refusals)
        batch_messages = [messages[i] for i in winners.values()] + healing
        result = spec.writer(batch, spec, batch_messages)
        _settle_heal_attempts(batch, refusals_before, waiting)
        # A refused record changes what waits for it too (e.g. a project without a
        # primary customer turns "project missing" into "project without primary customer").
        written[module] = result.applied | result.refused
        _resolve_decided(batch, module, result, batch_messages)
        _backfill(batch, specs, spec, batch.inserted(spec.model, result.applied))
        for index in indexes:
            key = _key(messages[index])
            won = winners.get(key) == index
            if won and key in result.refused:
                status[index] = EventOutcome.REFUSED
            elif won and key in result.applied:
                status[index] = EventOutcome.APPLIED
            else:
                status[index] = EventOutcome.STALE
    record_refusals(session, batch.refusals)
    note_inserted(session, SyncError, Counter(r.integration_id for r in batch.refusals))
    record_activity(session, messages, status)
    return [
        Outcome(m.event_id, m.integration_id, m.event.module.value, m.event.action.value, s)
        for m, s in zip(messages, status, strict=True)
    ]


def _claim(batch: BatchContext, messages: Sequence[QueueMessage], status: list[str]) -> list[int]:
    """Indexes of the messages seen for the first time; marks the rest duplicate."""
    live = [i for i, m in enumerate(messages) if m.integration_id in batch.integrations]
    claimed = claim_events(  # in key order: claim_events sorts
        batch.session,
        {(messages[i].integration_id, messages[i].event_id) for i in live},
        locked=True,  # taken with the dependency locks, in apply_batch
    )
    fresh = []
    for index in live:
        key = (messages[index].integration_id, messages[index].event_id)
        if key in claimed:
            claimed.discard(key)  # a second copy in the same batch is a duplicate
            fresh.append(index)
        else:
            status[index] = EventOutcome.DUPLICATE
    return fresh


def _park(
    session: Session, messages: Sequence[QueueMessage], paused: set[str], status: list[str]
) -> None:
    """Keep the events of disabled integrations, unapplied, until they are re-enabled."""
    rows = []
    for index, message in enumerate(messages):
        if message.integration_id in paused:
            status[index] = EventOutcome.PARKED
            rows.append(
                {
                    "integration_id": message.integration_id,
                    "event_id": message.event_id,
                    "parked_at": utcnow(),
                    "message": message.model_dump(mode="json"),
                }
            )
    insert_missing(session, ParkedEvent, rows, key=("integration_id", "event_id"))


def _integrations(session: Session, ids: set[str]) -> tuple[dict[str, RowContext], set[str]]:
    """The integrations that apply events, and the ids of the disabled (paused) ones."""
    named = (
        Integration.id == any_(bindparam("ids", sorted(ids), type_=ARRAY(String())))
        if is_postgresql(session)
        else Integration.id.in_(ids)
    )
    # Columns, not ORM objects: read once per batch, nothing to track.
    rows = session.execute(
        select(
            Integration.id,
            Integration.status,
            Integration.organization_id,
            Integration.invoiced_before,
            Integration.modules,
            Integration.field_map,
            Integration.customer_duplication,
        ).where(named, Integration.deleted_at.is_(None))
    ).all()
    paused = {i.id for i in rows if i.status == IntegrationState.DISABLED}
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
        if i.id not in paused
    }, paused


def _preload(batch: BatchContext, specs: Sequence[ModuleSpec], fresh: list[QueueMessage]) -> None:
    """Read, one query per table, the stored records the batch's events are about and
    those their rows name (a log's project, task and owner), so that no writer asks
    again: all of a batch's lookups of a table in one statement."""
    by_module = {s.module: s for s in specs}
    tables = {s.model for s in specs}
    wanted: dict[Any, set[Key]] = {}
    for message in fresh:
        spec = by_module.get(message.event.module)
        if spec is None:
            continue
        wanted.setdefault(spec.model, set()).add(_key(message))
        for target, key in relation_keys(spec, batch.row(spec, message)):
            if target in tables:  # customers are read by the projects writer's book
                wanted.setdefault(target, set()).add(key)
    batch.preload(wanted)


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


def _heal_unless_outdated(
    messages: Sequence[QueueMessage], winners: dict[Key, int], healing: list[QueueMessage]
) -> list[QueueMessage]:
    """Kept payloads to re-apply; a fresh event of the same record wins only if newer."""
    kept = []
    for message in healing:
        key = _key(message)
        fresh = winners.get(key)
        if fresh is not None:
            if _version(messages[fresh]) >= _version(message):
                continue
            del winners[key]  # the healed payload is newer: the fresh event is stale
        kept.append(message)
    return kept


def _waiting(
    batch: BatchContext, spec: ModuleSpec, written: dict[Module, set[Key]]
) -> dict[Key, tuple[QueueMessage, SyncError]]:
    """Refused records of the module whose missing dependency was handled in this batch
    (see rules.reasons.Reason.heals)."""
    arrived: dict[str, set[str]] = {}
    for dependency in spec.dependencies:
        for integration_id, source_id in written.get(dependency, ()):
            arrived.setdefault(integration_id, set()).add(source_id)
    healing: dict[Key, tuple[QueueMessage, SyncError]] = {}
    for integration_id, source_ids in arrived.items():
        if not batch.has_open_errors(integration_id, spec.module.value):
            continue
        for error in open_waiting(batch.session, integration_id, spec.module.value, source_ids):
            key = (integration_id, error.source_id)
            if key in healing or not error.last_payload:
                continue
            event = spec.validate_event(error.last_payload)
            # The event was just validated by its module's spec, and the rest is ours:
            # validating the envelope again would also refuse a module of a spec
            # registered outside schemas.Module (a test's).
            message = QueueMessage.model_construct(
                event_id=f"heal-{error.id}",
                integration_id=integration_id,
                event=event,
                source="replay",
            )
            healing[key] = (message, error)
    return healing


def _settle_heal_attempts(
    batch: BatchContext, since: int, waiting: dict[Key, tuple[QueueMessage, SyncError]]
) -> None:
    """A healed record refused again for the same reason is no new refusal; refused for
    another reason, its old error no longer holds."""
    if not waiting:
        return
    kept = []
    superseded = []
    for r in batch.refusals[since:]:
        key = (r.integration_id, r.source_id)
        if key in waiting and waiting[key][1].reason == r.reason.code:
            continue
        if key in waiting:
            superseded.append(waiting[key][1])
        kept.append(r)
    batch.refusals[since:] = kept
    resolve_unchanged(batch.session, superseded)


def _backfill(
    batch: BatchContext, specs: Sequence[ModuleSpec], written: ModuleSpec, applied: set[Key]
) -> None:
    """Fill links to the records just written in rows that were written before them."""
    if not applied:
        return
    for child in specs:
        if not child.late_links:
            continue
        for relation in child.relations:
            if relation.target is written.model:
                backfill_links(batch.session, relation, child.model, applied)


def _resolve_decided(
    batch: BatchContext, module: Module, result: ModuleResult, decided: Sequence[QueueMessage]
) -> None:
    """Errors about the versions just applied, or older than those just refused, are resolved."""
    for keys, inclusive in ((result.applied, True), (result.refused, False)):
        by_integration: dict[str, dict[str, Any]] = {}
        for message in decided:
            if _key(message) in keys:
                by_integration.setdefault(message.integration_id, {})[message.event.data.id] = (
                    message.event.modified_at
                )
        for integration_id, versions in by_integration.items():
            if not batch.has_open_errors(integration_id, module.value):
                continue  # nothing open to resolve
            resolve_records(
                batch.session, integration_id, module.value, versions, inclusive=inclusive
            )
