"""Database models and session factory."""

from worker.db.base import Base
from worker.db.billing import (
    Expense,
    Invoice,
    InvoiceLine,
    InvoiceLineTimesheet,
    Quote,
    RecurringInvoice,
    RecurringRun,
)
from worker.db.records import (
    Bug,
    Customer,
    Milestone,
    Project,
    ProjectStaff,
    StaffUser,
    SyncedRecord,
    Task,
    Tasklist,
    Timesheet,
)
from worker.db.session import make_engine, make_sessionmaker
from worker.db.sync_models import (
    DeadLetter,
    DeadLetterEdit,
    Integration,
    IntegrationActivity,
    IntegrationSecret,
    ParkedEvent,
    ProcessedEvent,
    SyncCursor,
    SyncError,
    SyncRun,
)
from worker.db.tenancy import ApiToken, InvoiceUser, Organization

__all__ = [
    "ApiToken",
    "Base",
    "Bug",
    "Customer",
    "Expense",
    "DeadLetter",
    "DeadLetterEdit",
    "Integration",
    "IntegrationActivity",
    "IntegrationSecret",
    "Invoice",
    "InvoiceLine",
    "InvoiceLineTimesheet",
    "InvoiceUser",
    "Milestone",
    "Organization",
    "ParkedEvent",
    "ProcessedEvent",
    "Project",
    "Quote",
    "RecurringInvoice",
    "RecurringRun",
    "ProjectStaff",
    "StaffUser",
    "SyncCursor",
    "SyncError",
    "SyncRun",
    "SyncedRecord",
    "Task",
    "Tasklist",
    "Timesheet",
    "make_engine",
    "make_sessionmaker",
]
