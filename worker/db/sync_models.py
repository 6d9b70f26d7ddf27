"""Integrations and the sync bookkeeping: secrets, seen events, cursors, errors, runs."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from worker.db.base import Base, utcnow

__all__ = [
    "Integration",
    "DeadLetter",
    "DeadLetterEdit",
    "IntegrationActivity",
    "IntegrationCount",
    "IntegrationSecret",
    "ParkedEvent",
    "ProcessedEvent",
    "SyncCursor",
    "SyncError",
    "SyncRun",
]


class IntegrationState(StrEnum):
    """Where an integration is in its lifecycle (``Integration.status``)."""

    SYNC_IN_PROGRESS = "sync_in_progress"
    ACTIVE = "active"
    DISABLED = "disabled"
    DELETED = "deleted"


class Integration(Base):
    """One organization's connection to one portal."""

    __tablename__ = "integrations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    portal_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    modules: Mapped[list[Any]]
    invoiced_before: Mapped[date | None]
    customer_duplication: Mapped[str] = mapped_column(String(16), default="overwrite")
    restrict_project_creation: Mapped[bool] = mapped_column(default=False)
    field_map: Mapped[dict[str, Any]] = mapped_column(default=dict)
    verification: Mapped[str] = mapped_column(String(16), default="signature")
    webhook_token_hash: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]

    secrets: Mapped[list[IntegrationSecret]] = relationship(
        back_populates="integration", order_by="IntegrationSecret.created_at.desc()"
    )


class IntegrationSecret(Base):
    """A Standard Webhooks signing secret. Several are valid during a rotation.

    Verifying an HMAC needs the secret itself, so it cannot be hashed: it is stored
    encrypted with the credential key (``worker.integrations.credential_box.seal_secret``); rows
    from before that hold the secret in clear until they are sealed.
    """

    __tablename__ = "integration_secrets"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), index=True)
    secret: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]

    integration: Mapped[Integration] = relationship(back_populates="secrets")


class ProcessedEvent(Base):
    """An event id already applied (or refused) for an integration: the dedupe ledger.

    On PostgreSQL the table is partitioned by week of ``processed_at`` (migration 0013,
    ``worker.db.partitions``) and its primary key holds ``processed_at`` too, as a
    partitioned table's must: an id is kept unique by ``claim_events`` (an advisory
    lock per id, then an insert of the ids not found in any partition), not by the key.
    The prune may also leave an id a renewed copy (``worker.db.retention``). SQLite keeps
    the plain table with this primary key.
    """

    __tablename__ = "processed_events"

    integration_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCursor(Base):
    """Per-module watermark: the newest source modification applied."""

    __tablename__ = "sync_cursors"

    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), primary_key=True)
    module: Mapped[str] = mapped_column(String(32), primary_key=True)
    watermark: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    synced: Mapped[int] = mapped_column(default=0)


class SyncError(Base):
    """One row of the error summary, keyed by (integration, module, record, reason)."""

    __tablename__ = "sync_errors"
    __table_args__ = (UniqueConstraint("integration_id", "module", "source_id", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"))
    module: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str] = mapped_column(Text, default="")
    count: Mapped[int] = mapped_column(default=1)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    resolved: Mapped[bool] = mapped_column(default=False)
    last_payload: Mapped[dict[str, Any] | None]
    details: Mapped[dict[str, Any] | None]
    # The portal id of the missing record this refusal waits for (auto-heal looks it up).
    depends_on: Mapped[str | None] = mapped_column(String(64))
    # Source version of last_payload: an older refusal never replaces a newer payload,
    # and applying an older version does not resolve a newer refusal.
    version: Mapped[datetime | None]


Index("ix_sync_errors_open", SyncError.integration_id, SyncError.resolved, SyncError.module)
Index("ix_sync_errors_waiting", SyncError.integration_id, SyncError.depends_on)


class SyncRun(Base):
    """One pull run (initial, instant, resume, reconciliation) for the sync history.

    ``outcome`` goes pending → running → succeeded | failed | interrupted | cancelled;
    ``started_at`` is when it was requested until a runner claims it. A running run
    whose ``heartbeat_at`` is old belongs to a runner that died.
    """

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mapped_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


Index("ix_sync_runs_outcome", SyncRun.outcome, SyncRun.started_at)


class ParkedEvent(Base):
    """An event that arrived while its integration was disabled: kept, not applied.

    Re-enabling republishes these (before the resume pull), so nothing accepted
    with a 202 is lost, and nothing is applied while the integration is paused.
    """

    __tablename__ = "parked_events"

    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    parked_at: Mapped[datetime] = mapped_column(default=utcnow)
    message: Mapped[dict[str, Any]]


class DeadLetter(Base):
    """An event the worker gave up on, kept whole until it is replayed or deleted.

    Fed from the ``billsync.dead-letters`` queue (acked only after this row is
    committed). ``body`` is the original queue message as received; the filter
    columns are copied out of it and of the error headers when it could be read.
    """

    __tablename__ = "dead_letters"
    # SQLite: never hand out the id of a deleted dead letter again (migration 0010).
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(200))
    module: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str | None] = mapped_column(String(16))
    routing_key: Mapped[str] = mapped_column(String(100), default="")
    error_class: Mapped[str] = mapped_column(String(100))
    error_message: Mapped[str] = mapped_column(Text, default="")
    traceback: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0)
    first_failure_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    dead_at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[str] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)


Index("ix_dead_letters_filter", DeadLetter.integration_id, DeadLetter.module, DeadLetter.dead_at)
Index("ix_dead_letters_event", DeadLetter.event_id)


class DeadLetterEdit(Base):
    """Audit of an edit-and-replay: the body before and after, and who changed it."""

    __tablename__ = "dead_letter_edits"

    id: Mapped[int] = mapped_column(primary_key=True)
    dead_letter_id: Mapped[int] = mapped_column(index=True)
    event_id: Mapped[str | None] = mapped_column(String(200))
    original: Mapped[str] = mapped_column(Text)
    edited: Mapped[str] = mapped_column(Text)
    edited_by: Mapped[str] = mapped_column(String(100))
    edited_at: Mapped[datetime] = mapped_column(default=utcnow)


class IntegrationActivity(Base):
    """What the worker last did per integration and module, for status and metrics.

    Updated once per batch (not per event) with "greatest wins" semantics.
    """

    __tablename__ = "integration_activity"

    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), primary_key=True)
    module: Mapped[str] = mapped_column(String(32), primary_key=True)
    applied: Mapped[int] = mapped_column(default=0)
    refused: Mapped[int] = mapped_column(default=0)
    last_applied_at: Mapped[datetime | None]
    newest_applied_version: Mapped[datetime | None]
    last_webhook_at: Mapped[datetime | None]


class IntegrationCount(Base):
    """Deltas of the counts status shows per integration (live records per module, open
    errors per module, parked events, dead letters); a count is the sum of its deltas.

    Written only by the database's triggers (migration 0012), read by
    ``integration_counts``: see ``worker.db.counts``.
    """

    __tablename__ = "integration_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[str] = mapped_column(String(64))
    counter: Mapped[str] = mapped_column(String(64))
    delta: Mapped[int]


Index(
    "ix_integration_counts_integration", IntegrationCount.integration_id, IntegrationCount.counter
)
