"""Which time logs the organization may bill, and with which billing status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum

from schemas.payloads import TimesheetData
from worker.db import BillingStatus
from worker.sync.rules.reasons import (
    CONFLICT_INVOICED,
    MODULE_NOT_SELECTED,
    NOT_APPROVED,
    NOT_BILLABLE,
    PROJECT_WITHOUT_PRIMARY_CUSTOMER,
    RELATED_BUG_MISSING,
    RELATED_PROJECT_MISSING,
    RELATED_TASK_MISSING,
    Reason,
)

__all__ = [
    "CONFLICT_INVOICED",
    "ProjectState",
    "TimesheetFacts",
    "billing_status",
    "decide_timesheet",
    "is_locked",
    "withdraws",
]


class ProjectState(Enum):
    SYNCED = "synced"
    DELETED = "deleted"
    NO_PRIMARY_CUSTOMER = "no_primary_customer"
    MISSING = "missing"


@dataclass(frozen=True)
class TimesheetFacts:
    """What the database says about a time log's surroundings."""

    module_selected: bool
    project: ProjectState
    task_synced: bool
    bug_synced: bool


def billing_status(log_date: date, invoiced_before: date | None) -> BillingStatus:
    """Logged before the "invoiced before" date → invoiced; on or after it → unbilled."""
    if invoiced_before is not None and log_date < invoiced_before:
        return BillingStatus.INVOICED
    return BillingStatus.UNBILLED


def is_locked(stored_billing_status: str | None) -> bool:
    """An invoiced time log does not change whatever the portal says."""
    return stored_billing_status == BillingStatus.INVOICED


def withdraws(reason: Reason) -> bool:
    """A refusal about the log itself (not a missing record) takes it off the invoicing side.

    Its version is kept as a withdrawn record, so an older version that arrives later
    cannot bring the log back; a refusal for a missing record waits to be healed instead.
    """
    return reason in (MODULE_NOT_SELECTED, NOT_BILLABLE, NOT_APPROVED)


def decide_timesheet(data: TimesheetData, facts: TimesheetFacts) -> Reason | None:
    """None if the log syncs; else the first reason it may not (in the seed's order).

    A log of a deleted project syncs, and the writer withdraws it unless it is invoiced,
    as deleting the project would have done.
    """
    if not facts.module_selected:
        return MODULE_NOT_SELECTED
    if data.bill_status != "Billable":
        return NOT_BILLABLE
    if data.approval_status != "Approved":
        return NOT_APPROVED
    if facts.project is ProjectState.DELETED:
        return None
    if facts.project is ProjectState.NO_PRIMARY_CUSTOMER:
        return PROJECT_WITHOUT_PRIMARY_CUSTOMER
    if facts.project is ProjectState.MISSING:
        return RELATED_PROJECT_MISSING
    if data.task_id and not facts.task_synced:
        return RELATED_TASK_MISSING
    if data.bug_id and not facts.bug_synced:
        return RELATED_BUG_MISSING
    return None
