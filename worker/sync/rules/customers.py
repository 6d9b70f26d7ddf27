"""Which invoicing customer a project's primary customer becomes.

Order: a customer already linked (same CRM id, else same portal client id) is
updated; else an existing customer of the organization matched by email, else by
name, is overwritten or cloned as the integration's duplication preference says
(a primary customer carrying a CRM id always overwrites: CRM details win); else a
new customer is created. A linked or matched customer with another currency is a
``currency_mismatch``, and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.payloads import PrimaryClient
from worker.sync.rules.reasons import CURRENCY_MISMATCH, Reason

__all__ = ["CustomerDecision", "CustomerView", "decide_customer", "pick_match"]

Action = Literal["update", "overwrite", "clone", "create"]


@dataclass(frozen=True)
class CustomerView:
    """What the rule needs to know of an existing customer."""

    id: int
    name: str | None
    email: str | None
    currency_code: str | None


@dataclass(frozen=True)
class CustomerDecision:
    action: Action
    customer_id: int | None = None  # the customer to update or overwrite


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().lower() == b.strip().lower()


def pick_match(client: PrimaryClient, candidates: list[CustomerView]) -> CustomerView | None:
    """The existing customer the primary customer matches: by email first, else by name."""
    if client.email:
        by_email = [c for c in candidates if _same(c.email, client.email)]
        if by_email:
            return min(by_email, key=lambda c: c.id)
    by_name = [c for c in candidates if _same(c.name, client.name)]
    return min(by_name, key=lambda c: c.id) if by_name else None


def decide_customer(
    client: PrimaryClient,
    preference: str,
    *,
    linked: CustomerView | None,
    match: CustomerView | None,
) -> CustomerDecision | Reason:
    """What to do with the primary customer, or the reason it cannot be synced."""
    existing = linked or match
    if existing is not None and _currency_differs(existing.currency_code, client.currency_code):
        return CURRENCY_MISMATCH
    if linked is not None:
        return CustomerDecision("update", linked.id)
    if match is not None:
        if client.crm_id or preference == "overwrite":
            return CustomerDecision("overwrite", match.id)
        return CustomerDecision("clone")
    return CustomerDecision("create")


def _currency_differs(existing: str | None, incoming: str | None) -> bool:
    return existing is not None and incoming is not None and existing.upper() != incoming.upper()
