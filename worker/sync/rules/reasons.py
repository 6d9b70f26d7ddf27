"""Why a record was refused: the error-summary reason codes, with their resolutions."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CONFLICT_INVOICED",
    "CURRENCY_MISMATCH",
    "MODULE_NOT_SELECTED",
    "NOT_APPROVED",
    "NOT_BILLABLE",
    "NO_PRIMARY_CUSTOMER",
    "PROJECT_WITHOUT_PRIMARY_CUSTOMER",
    "REASONS",
    "RELATED_BUG_MISSING",
    "RELATED_PROJECT_MISSING",
    "RELATED_TASK_MISSING",
    "Reason",
]


@dataclass(frozen=True)
class Reason:
    """A refusal reason. ``heals`` names the module whose arrival applies the record."""

    code: str
    message: str
    resolution: str
    heals: str | None = None


NO_PRIMARY_CUSTOMER = Reason(
    "no_primary_customer",
    "The project has no primary customer, so it was not synced.",
    "Associate the project with a primary customer in the portal.",
)
CURRENCY_MISMATCH = Reason(
    "currency_mismatch",
    "The primary customer already exists in the organization with a different currency.",
    "Change the currency of the customer in the organization or of the primary customer "
    "in the portal so they match.",
)
RELATED_PROJECT_MISSING = Reason(
    "related_project_missing",
    "The record's project has not been synced.",
    "Make sure the project has a primary customer whose currency matches; the record "
    "syncs by itself once its project does.",
    heals="projects",
)
MODULE_NOT_SELECTED = Reason(
    "module_not_selected",
    "Timesheets are not among the integration's modules.",
    "Select the timesheet module for the integration.",
)
NOT_BILLABLE = Reason(
    "not_billable",
    "The time log is not billable.",
    "Mark the time log as billable in the portal.",
)
NOT_APPROVED = Reason(
    "not_approved",
    "The time log is not approved.",
    "Approve the time log in the portal.",
)
PROJECT_WITHOUT_PRIMARY_CUSTOMER = Reason(
    "project_without_primary_customer",
    "The time log's project has no primary customer, so the log cannot be synced.",
    "Associate the project with a primary customer in the portal; the log syncs by itself "
    "once the project does.",
    heals="projects",
)
RELATED_TASK_MISSING = Reason(
    "related_task_missing",
    "The time log's task has not been synced.",
    "Make sure the task's project is synced; the log syncs by itself once its task does.",
    heals="tasks",
)
RELATED_BUG_MISSING = Reason(
    "related_bug_missing",
    "The time log's bug has not been synced.",
    "Make sure the bug's project is synced; the log syncs by itself once its bug does.",
    heals="bugs",
)
CONFLICT_INVOICED = Reason(
    "conflict_invoiced",
    "The time log is already invoiced; the change from the portal was not applied.",
    "Void the invoice to release the time log (the kept change is applied then), or "
    "revert the change in the portal.",
)

REASONS: dict[str, Reason] = {
    r.code: r
    for r in (
        NO_PRIMARY_CUSTOMER,
        CURRENCY_MISMATCH,
        RELATED_PROJECT_MISSING,
        MODULE_NOT_SELECTED,
        NOT_BILLABLE,
        NOT_APPROVED,
        PROJECT_WITHOUT_PRIMARY_CUSTOMER,
        RELATED_TASK_MISSING,
        RELATED_BUG_MISSING,
        CONFLICT_INVOICED,
    )
}
