"""Portal users as staff: project staff if they use the invoicing organization, else inactive."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from schemas import QueueMessage
from schemas.payloads import TimesheetOwner
from worker.db import InvoiceUser, StaffUser, utcnow
from worker.sync.columns import RowContext, RowShape
from worker.sync.rules.staff import PROJECT_STAFF, normalize_email, staff_kind
from worker.sync.statistics import note_inserted
from worker.sync.upsert import insert_missing
from worker.sync.writers.common import BatchContext, Key, ModuleResult, ids_by_source, write_rows

__all__ = ["ensure_staff", "invoice_user_emails", "promote_staff", "write_users"]

# Staff first seen on a time log carry no user version; any users-module event is newer.
_NO_VERSION = datetime(1970, 1, 1, tzinfo=UTC)


def invoice_user_emails(
    session: Session, organization_ids: Iterable[str], emails: Iterable[str | None]
) -> set[str]:
    """Which of ``emails`` belong to users of these organizations (lower-cased)."""
    wanted = {e for e in (normalize_email(x) for x in emails) if e}
    if not wanted:
        return set()
    stmt = select(InvoiceUser.email).where(
        InvoiceUser.organization_id.in_(set(organization_ids)), InvoiceUser.email.in_(wanted)
    )
    return set(session.scalars(stmt))


def write_users(
    batch: BatchContext, shape: RowShape, messages: Sequence[QueueMessage]
) -> ModuleResult:
    rows = [batch.row(shape, m) for m in messages]
    known = invoice_user_emails(
        batch.session, {r["organization_id"] for r in rows}, (r.get("email") for r in rows)
    )
    for row in rows:
        if not row["deleted"]:
            row["kind"] = staff_kind(row["email"], known)
    return ModuleResult(applied=write_rows(batch, shape.model, rows))


def ensure_staff(
    batch: BatchContext, owners: Iterable[tuple[RowContext, TimesheetOwner]]
) -> dict[Key, int]:
    """Staff users for time-log owners, created if missing; ids by (integration, user id)."""
    session = batch.session
    everyone = list(owners)
    keys = {(ctx.integration_id, owner.id) for ctx, owner in everyone}
    # Staff already stored stay as they are: only the new ones are made (and need to know
    # whether they use the invoicing organization).
    stored = batch.stored(StaffUser, keys)
    pairs = [(ctx, o) for ctx, o in everyone if (ctx.integration_id, o.id) not in stored]
    if not pairs:
        return ids_by_source(batch, StaffUser, keys)
    known = invoice_user_emails(
        session, {ctx.organization_id for ctx, _ in pairs}, (o.email for _, o in pairs)
    )
    rows = {
        (ctx.integration_id, owner.id): {
            "organization_id": ctx.organization_id,
            "integration_id": ctx.integration_id,
            "source_id": owner.id,
            "source_modified_at": _NO_VERSION,
            "deleted": False,
            "payload": owner.model_dump(mode="json"),
            "name": owner.name,
            "email": normalize_email(owner.email),
            "kind": staff_kind(owner.email, known),
            "updated_at": utcnow(),
        }
        for ctx, owner in pairs
    }
    insert_missing(session, StaffUser, list(rows.values()))
    batch.forget(StaffUser, rows.keys())
    note_inserted(session, StaffUser, Counter(integration_id for integration_id, _ in rows))
    return ids_by_source(batch, StaffUser, keys)


def promote_staff(session: Session, organization_id: str, email: str) -> int:
    """A user added to the organization turns its staff records into project staff."""
    result = session.execute(
        update(StaffUser)
        .where(
            StaffUser.organization_id == organization_id, StaffUser.email == normalize_email(email)
        )
        .values(kind=PROJECT_STAFF, updated_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
