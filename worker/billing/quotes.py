"""Quotes: numbered estimates for a project, in its customer's currency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from schemas.numbers import hours_text, money_text, rate_text
from worker.accounts import owned
from worker.billing.invoices import currency_of, next_number, project_of, round_money
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


def quote_view(quote: Quote) -> dict[str, Any]:
    return {
        "id": quote.id,
        "number": quote.number,
        "project_id": quote.project_id,
        "status": quote.status,
        "issue_date": quote.issue_date.isoformat(),
        "expiry_date": quote.expiry_date.isoformat() if quote.expiry_date else None,
        "currency_code": quote.currency_code,
        "lines": [_line_view(line, quote.currency_code) for line in quote.lines],
        "total": money_text(quote.total, quote.currency_code),
    }


def _line_view(line: dict[str, Any], currency: str) -> dict[str, Any]:
    """A stored line with its figures written by the one rule (lines stored before it
    may hold ``str(Decimal)`` text such as ``"1.2E+2"``)."""
    return {
        **line,
        "hours": hours_text(Decimal(line["hours"])),
        "rate": rate_text(Decimal(line["rate"]), currency),
        "amount": money_text(Decimal(line["amount"]), currency),
    }


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
