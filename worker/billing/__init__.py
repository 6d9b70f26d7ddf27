"""Billing the synced time: invoices for a project (or chosen milestones, task
lists, tasks) with exact un-invoicing on void, the unbilled summary, expenses,
quotes and recurring invoices run by ``billsync billing run-due``."""

from worker.billing.expenses import (
    create_expense,
    delete_expense,
    expense_currency,
    expense_view,
    list_expenses,
    update_expense,
)
from worker.billing.invoices import (
    InvoiceRequest,
    NothingToInvoice,
    Scope,
    create_invoice,
    invoice_view,
    known_currency,
    project_of,
    unbilled_summary,
    void_invoice,
)
from worker.billing.pricing import GROUPINGS, RateHolder, RateMissing
from worker.billing.quotes import create_quote, get_quote, quote_view, update_quote
from worker.billing.recurring import PeriodOutcome, create_recurring, recurring_view, run_due

__all__ = [
    "GROUPINGS",
    "InvoiceRequest",
    "NothingToInvoice",
    "PeriodOutcome",
    "RateHolder",
    "RateMissing",
    "Scope",
    "create_expense",
    "create_invoice",
    "create_quote",
    "create_recurring",
    "delete_expense",
    "expense_currency",
    "expense_view",
    "get_quote",
    "invoice_view",
    "known_currency",
    "list_expenses",
    "project_of",
    "quote_view",
    "recurring_view",
    "run_due",
    "unbilled_summary",
    "update_expense",
    "update_quote",
    "void_invoice",
]
