"""What kind of staff a portal user is on the invoicing side."""

from __future__ import annotations

__all__ = ["INACTIVE_TIMESHEET_STAFF", "PROJECT_STAFF", "normalize_email", "staff_kind"]

PROJECT_STAFF = "project_staff"
INACTIVE_TIMESHEET_STAFF = "inactive_timesheet_staff"


def normalize_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def staff_kind(email: str | None, invoice_user_emails: set[str]) -> str:
    """A user of the invoicing organization is project staff; anyone else is inactive."""
    if normalize_email(email) in invoice_user_emails:
        return PROJECT_STAFF
    return INACTIVE_TIMESHEET_STAFF
