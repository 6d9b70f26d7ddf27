"""The generic writer of a module whose records belong to a project (milestones, task
lists, tasks, bugs): written only under a synced project."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas import QueueMessage
from worker.db import Project
from worker.sync.columns import RowShape
from worker.sync.rules.reasons import RELATED_PROJECT_MISSING
from worker.sync.writers.common import (
    BatchContext,
    Key,
    ModuleResult,
    ids_by_source,
    is_newer,
    record_key,
    refusal,
    resolve_relations,
    write_rows,
)

__all__ = ["write_children"]


def write_children(
    batch: BatchContext, shape: RowShape, messages: Sequence[QueueMessage]
) -> ModuleResult:
    """Refuse upserts whose project is not synced (``related_project_missing``); write the rest.

    A record of a deleted project is kept as withdrawn, as if it had been there when the
    project was deleted.
    """
    result = ModuleResult()
    pairs = [(m, batch.row(shape, m)) for m in messages]
    project_keys = [(r["integration_id"], r["project_source_id"]) for _, r in pairs]
    known_projects = ids_by_source(batch, Project, project_keys)
    live_projects = ids_by_source(batch, Project, project_keys, live_only=True)
    withdrawn = known_projects.keys() - live_projects.keys()
    stored = _stored_versions(batch, shape, messages)
    rows = []
    for message, row in pairs:
        project_key = (row["integration_id"], row["project_source_id"])
        if not is_newer(message, *stored.get(record_key(message), (None, False))):
            continue  # stale: a newer version is stored, nothing to write or refuse
        if not row["deleted"] and project_key in withdrawn:
            row["deleted"] = True
        elif not row["deleted"] and project_key not in live_projects:
            batch.refusals.append(
                refusal(message, RELATED_PROJECT_MISSING, depends_on=row["project_source_id"])
            )
            result.refused.add(record_key(message))
            continue
        rows.append(row)
    resolve_relations(batch, shape.relations, rows)
    result.applied = write_rows(batch, shape.model, rows)
    return result


def _stored_versions(
    batch: BatchContext, shape: RowShape, messages: Sequence[QueueMessage]
) -> dict[Key, tuple[Any, bool]]:
    """(version, deleted) of the stored records, so an outdated event is never refused:
    its refusal would stay open beside the newer version."""
    found = batch.stored(shape.model, [record_key(m) for m in messages])
    return {key: (stored.version, stored.deleted) for key, stored in found.items()}
