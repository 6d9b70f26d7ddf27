"""Quotes: numbered estimates for a project, in its customer's currency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from schemas.responses import QuoteView, figures_in
from worker.accounts import owned
from worker.billing.invoices import currency_of, next_number, project_of
from worker.billing.pricing import round_money
from worker.db import Quote

__all__ = ["create_quote", "get_quote", "quote_view", "update_quote"]


def create_quote(
    session: Session,
    organization_id: str,
    project_id: int,
    lines: Sequence[dict[str, Any]],
    *,
    issue_date: date,
    expiry_date: date | None = None,
) -> Quote:
    """``lines``: ``{"description", "hours", "rate"}``; amounts are computed and rounded."""
    project = project_of(session, organization_id, project_id)
    currency = currency_of(session, project)
    quote = Quote(
        organization_id=organization_id,
        project_id=project.id,
        number=next_number(session, Quote, organization_id, "QT"),
        issue_date=issue_date,
        expiry_date=expiry_date,
        currency_code=currency,
        total=Decimal(0),
    )
    _set_lines(quote, lines)
    session.add(quote)
    session.flush()
    return quote


def get_quote(session: Session, organization_id: str, quote_id: int) -> Quote:
    return owned(session, Quote, quote_id, organization_id, "quote")


def update_quote(session: Session, quote: Quote, changes: dict[str, Any]) -> Quote:
    if "lines" in changes:
        _set_lines(quote, changes.pop("lines"))
    for name, value in changes.items():
        setattr(quote, name, value)
    return quote


def quote_view(quote: Quote) -> QuoteView:
    """A quote with its figures written by the one rule (lines stored before it may
    hold ``str(Decimal)`` text such as ``"1.2E+2"``)."""
    return QuoteView.model_validate(quote, context=figures_in(quote.currency_code))


def _set_lines(quote: Quote, lines: Sequence[dict[str, Any]]) -> None:
    priced = []
    for position, line in enumerate(lines, start=1):
        hours, rate = Decimal(str(line["hours"])), Decimal(str(line["rate"]))
        amount = round_money(hours * rate, quote.currency_code)
        priced.append(
            {
                "position": position,
                "description": line["description"],
                # Exact, fixed-point: what the quote was priced with, never an exponent.
                "hours": format(hours, "f"),
                "rate": format(rate, "f"),
                "amount": format(amount, "f"),
            }
        )
    quote.lines = priced
    quote.total = sum((Decimal(line["amount"]) for line in priced), Decimal(0))
