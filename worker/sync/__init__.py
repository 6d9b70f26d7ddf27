"""Applying events: one batch, one transaction. Event ids claimed once, newer source
versions win, every module written set-based by its writer under the sync rules
(``worker.sync.rules``, I/O-free), refusals kept in the error summary, and
per-module activity for status. ``worker.sync.modules`` declares each portal
module once (``ModuleSpec``); apply, the pull, status and the sync history look
modules up there."""

from worker.sync.activity import EventOutcome
from worker.sync.apply import Outcome, apply_batch
from worker.sync.columns import Relation, RowContext
from worker.sync.error_summary import ErrorPage, page_errors
from worker.sync.modules import (
    MODULES,
    PROJECT_RELATION,
    ModuleSpec,
    Related,
    Writer,
    registered,
    spec_for,
)
from worker.sync.rules.staff import normalize_email
from worker.sync.rules.timesheets import CONFLICT_INVOICED
from worker.sync.statistics import refresh_statistics
from worker.sync.writers.children import write_children
from worker.sync.writers.users import promote_staff

__all__ = [
    "CONFLICT_INVOICED",
    "ErrorPage",
    "EventOutcome",
    "INVOICED",
    "MODULES",
    "ModuleSpec",
    "Outcome",
    "PROJECT_RELATION",
    "Related",
    "Relation",
    "RowContext",
    "UNBILLED",
    "Writer",
    "apply_batch",
    "normalize_email",
    "page_errors",
    "promote_staff",
    "refresh_statistics",
    "registered",
    "spec_for",
    "write_children",
]
