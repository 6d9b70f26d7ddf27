"""Every record belongs to one organization; another organization's is "not found"."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from worker.errors import NotFound

__all__ = ["owned"]

T = TypeVar("T")


def owned(
    session: Session,
    model: type[T],
    record_id: Any,
    organization_id: str,
    what: str,
    *,
    for_update: bool = False,
) -> T:
    """The organization's live record, or NotFound (never say whose it is)."""
    record = session.get(model, record_id, with_for_update=for_update)
    found: Any = record
    if (
        found is None
        or found.organization_id != organization_id
        or getattr(found, "deleted", False)
    ):
        raise NotFound(f"no {what} {record_id}")
    return found  # type: ignore[no-any-return]
