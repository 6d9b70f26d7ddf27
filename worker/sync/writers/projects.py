"""Projects: synced only with a primary customer, linked to the right invoicing customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update

from schemas import QueueMessage
from schemas.envelope import ProjectEvent
from schemas.payloads import PrimaryClient
from worker.db import BillingStatus, Customer, Project, Timesheet, utcnow
from worker.sync.columns import RowContext, RowShape, event_row
from worker.sync.rules.customers import CustomerDecision, CustomerView, decide_customer, pick_match
from worker.sync.rules.reasons import NO_PRIMARY_CUSTOMER, Reason
from worker.sync.writers.common import (
    BatchContext,
    Key,
    ModuleResult,
    is_newer,
    record_key,
    refusal,
    resolve_relations,
    write_rows,
)

__all__ = ["link_clients", "write_projects"]


def write_projects(
    batch: BatchContext, shape: RowShape, messages: Sequence[QueueMessage]
) -> ModuleResult:
    """Link each project's primary customer, refuse what may not sync, write the rest.

    A written delete withdraws the project's children and its unbilled time; invoiced
    time stays.
    """
    session = batch.session
    result = ModuleResult()
    stored = _stored_versions(batch, messages)
    rows = []
    for message in messages:
        ctx = batch.integrations[message.integration_id]
        key = record_key(message)
        row = event_row(shape, message.event, ctx)
        version, deleted = stored.get(key, (None, False))
        if isinstance(message.event, ProjectEvent):
            client = message.event.data.primary_client
            if not is_newer(message, version, deleted):
                link_clients(batch, [message])
                rows.append(row)
                continue
            verdict = NO_PRIMARY_CUSTOMER if client is None else _link_customer(batch, ctx, client)
            if isinstance(verdict, Reason):
                batch.refusals.append(refusal(message, verdict))
                result.refused.add(key)
                continue
            if row.get("crm_id") and version is None:
                _adopt_local_project(batch, ctx, row["crm_id"], message.event.data.id)
        rows.append(row)
    resolve_relations(session, shape.relations, rows)
    result.applied = write_rows(session, Project, rows)
    deleted_keys = [(r["integration_id"], r["source_id"]) for r in rows if r["deleted"]]
    _withdraw_children([k for k in deleted_keys if k in result.applied], batch)
    return result


def link_clients(batch: BatchContext, outdated: Sequence[QueueMessage]) -> None:
    """Customers for the primary clients of outdated project versions, if not linked yet.

    The project version lost to a newer one (perhaps a delete), but its client is a
    portal record of its own: the organization gets it whatever order events came in.
    """
    for message in outdated:
        if not isinstance(message.event, ProjectEvent) or message.event.data.primary_client is None:
            continue
        ctx = batch.integrations[message.integration_id]
        client = message.event.data.primary_client
        if _linked_customer(batch, ctx, client) is None:
            _link_customer(batch, ctx, client)


def _stored_versions(
    batch: BatchContext, messages: Sequence[QueueMessage]
) -> dict[Key, tuple[Any, bool]]:
    keys = [record_key(m) for m in messages]
    if not keys:
        return {}
    rows = batch.session.execute(
        select(
            Project.integration_id, Project.source_id, Project.source_modified_at, Project.deleted
        ).where(tuple_(Project.integration_id, Project.source_id).in_(keys))
    )
    return {(str(i), str(s)): (v, d) for i, s, v, d in rows}


def _view(customer: Customer) -> CustomerView:
    return CustomerView(customer.id, customer.name, customer.email, customer.currency_code)


def _link_customer(batch: BatchContext, ctx: RowContext, client: PrimaryClient) -> Reason | None:
    """Create, update, overwrite or clone the invoicing customer for ``client``."""
    session = batch.session
    linked = _linked_customer(batch, ctx, client)
    match = (
        None if linked else pick_match(client, [_view(c) for c in _candidates(batch, ctx, client)])
    )
    decision = decide_customer(
        client, ctx.customer_duplication, linked=_view(linked) if linked else None, match=match
    )
    if isinstance(decision, Reason):
        return decision
    target = linked if decision.action == "update" else _existing(batch, decision)
    if target is None:
        target = Customer(organization_id=ctx.organization_id)
        session.add(target)
    target.integration_id = ctx.integration_id
    target.source_id = client.id
    target.name = client.name
    target.email = client.email or target.email
    target.currency_code = client.currency_code or target.currency_code
    target.crm_id = client.crm_id or target.crm_id
    target.payload = client.model_dump(mode="json")
    target.deleted = False
    target.updated_at = utcnow()
    session.flush()
    return None


def _existing(batch: BatchContext, decision: CustomerDecision) -> Customer | None:
    if decision.action != "overwrite" or decision.customer_id is None:
        return None
    return batch.session.get(Customer, decision.customer_id)


def _linked_customer(
    batch: BatchContext, ctx: RowContext, client: PrimaryClient
) -> Customer | None:
    """The customer already standing for ``client``: same CRM id first, else same client id."""
    base = select(Customer).where(
        Customer.organization_id == ctx.organization_id, Customer.deleted.is_(False)
    )
    if client.crm_id:
        by_crm = batch.session.scalars(base.where(Customer.crm_id == client.crm_id)).first()
        if by_crm is not None:
            return by_crm
    return batch.session.scalars(
        base.where(Customer.integration_id == ctx.integration_id, Customer.source_id == client.id)
    ).first()


def _candidates(batch: BatchContext, ctx: RowContext, client: PrimaryClient) -> list[Customer]:
    """The organization's customers not linked to this integration that could match."""
    same = [func.lower(Customer.name) == client.name.strip().lower()]
    if client.email:
        same.append(func.lower(Customer.email) == client.email.strip().lower())
    stmt = select(Customer).where(
        Customer.organization_id == ctx.organization_id,
        Customer.deleted.is_(False),
        or_(Customer.integration_id.is_(None), Customer.integration_id != ctx.integration_id),
        or_(*same),
    )
    return list(batch.session.scalars(stmt))


def _adopt_local_project(batch: BatchContext, ctx: RowContext, crm_id: str, source_id: str) -> None:
    """A local project with the same CRM id becomes the synced one (CRM details win)."""
    batch.session.execute(
        update(Project)
        .where(
            Project.organization_id == ctx.organization_id,
            Project.integration_id.is_(None),
            Project.crm_id == crm_id,
        )
        .values(integration_id=ctx.integration_id, source_id=source_id, standalone=False)
    )


def _withdraw_children(deleted: list[Key], batch: BatchContext) -> None:
    if not deleted:
        return
    now = utcnow()
    for model in batch.project_children:
        table: Any = model
        stmt = update(table).where(
            tuple_(table.integration_id, table.project_source_id).in_(deleted),
            table.deleted.is_(False),
        )
        if model is Timesheet:
            stmt = stmt.where(table.billing_status == BillingStatus.UNBILLED)
        batch.session.execute(stmt.values(deleted=True, updated_at=now))
