"""``ModuleSpec``: everything billsync knows about one portal module, in one place.

A spec says how the module's events become rows (model, columns, relations, writer),
which modules must arrive first (dependencies), and how a pull reads it from the
portal (listing paths, per project or not, converter). The registry in
``worker.sync.modules`` holds one spec per module; everything else looks them up.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from schemas import Module, QueueMessage, WebhookEvent, event_adapter
from schemas.responses import RecordView
from worker.db import Project, SyncedRecord
from worker.portal import Converter, PortalClient
from worker.sync.columns import Columns, Relation
from worker.sync.writers.common import BatchContext, ModuleResult

__all__ = ["PROJECT_RELATION", "ModuleSpec", "ReadShape", "Related", "Writer"]

# The relation of every record that belongs to a project.
PROJECT_RELATION = Relation("project_id", "project_source_id", Project)

# Reads what a converter needs beside the record itself (a project's clients).
Related = Callable[[PortalClient, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ReadShape:
    """How the read API answers the module's records (``GET /api/v1/<module>``): the
    response model and the query filters it allows."""

    view: type[RecordView]
    filters: tuple[str, ...] = ()
    # Filters over a closed set of values: another value is refused, not an empty page.
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleSpec:
    """One portal module.

    Applying: ``model`` is its table; ``columns`` turns a validated payload into the
    module's own columns (the bookkeeping columns are common); ``relations`` name the
    rows it links to by portal id; ``writer`` writes a batch of its events under the
    sync rules; a refusal waiting for a missing record is healed when a record of one
    of ``dependencies`` arrives (they come earlier in the registry). ``late_links``:
    rows may be written before the records they link to (a time log before its task),
    and their links are filled in when those arrive. ``on_outdated`` sees the
    versions of a batch that lost to a newer one (a project's client is still linked).

    Pulling: ``paths`` is where the portal lists the module (older names to fall back
    on after the first), under ``/projects/{id}/`` when ``per_project`` (its records
    belong to a project: they carry ``project_id``, are read per synced project and
    are withdrawn with it). A ``windowed`` module is listed in date windows, once per
    log type (time logs), by the client's time-log listing rather than ``paths``.
    ``converter`` turns a REST record into event data, with whatever ``related``
    reads beside it. Deletes are looked for by listing unless ``detect_deletes`` is
    off. An ``optional`` module is synced only where the integration selects it.

    Reading: ``read`` is how the API answers its records, if it lists them under the
    module's name (portal users are read as the organization's staff instead).

    ``payload`` is the contract's payload model: its fields are the module's standard
    fields. ``validate_event`` reads an event of the module (from the pull, or a kept
    refusal being healed): the envelope's union, which every real module is part of.
    """

    module: Module
    model: type[SyncedRecord]
    payload: type[BaseModel]
    columns: Columns
    writer: Writer
    converter: Converter
    relations: tuple[Relation, ...] = ()
    dependencies: tuple[Module, ...] = ()
    late_links: bool = False
    on_outdated: Callable[[BatchContext, Sequence[QueueMessage]], None] | None = None
    paths: tuple[str, ...] = ()
    per_project: bool = False
    windowed: bool = False
    related: Related | None = None
    detect_deletes: bool = True
    optional: bool = False
    validate_event: Callable[[Any], WebhookEvent] = event_adapter.validate_python
    read: ReadShape | None = None

    def synced_for(self, selected: Collection[str]) -> bool:
        """Whether an integration that selected ``selected`` modules syncs this one."""
        return not self.optional or self.module.value in selected


# Writes a batch of the module's events (newest version per record) in the caller's
# transaction; given the module's spec, so writers need not import the registry.
Writer = Callable[[BatchContext, ModuleSpec, Sequence[QueueMessage]], ModuleResult]
