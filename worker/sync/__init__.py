"""Applying events: one batch, one transaction. Event ids claimed once, newer source
versions win, every module written set-based by its writer under the sync rules
(``worker.sync.rules``, I/O-free), refusals kept in the error summary, and
per-module activity for status. ``worker.sync.modules`` declares each portal
module once."""

from worker.sync.apply import Outcome, apply_batch
from worker.sync.columns import MODELS
from worker.sync.error_summary import ErrorPage, page_errors
from worker.sync.rules.staff import normalize_email
from worker.sync.rules.timesheets import INVOICED, UNBILLED
from worker.sync.writers.users import promote_staff

__all__ = [
    "ErrorPage",
    "INVOICED",
    "MODELS",
    "Outcome",
    "UNBILLED",
    "apply_batch",
    "normalize_email",
    "page_errors",
    "promote_staff",
]
