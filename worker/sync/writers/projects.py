"""Projects: synced only with a primary customer, linked to the right invoicing customer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY

from schemas import QueueMessage
from schemas.envelope import ProjectEvent
from schemas.payloads import PrimaryClient
from worker.db import BillingStatus, Customer, Project, Timesheet, utcnow
from worker.sync.columns import RowContext, RowShape
from worker.sync.rules.customers import CustomerDecision, CustomerView, decide_customer, pick_match
from worker.sync.rules.reasons import NO_PRIMARY_CUSTOMER, Reason
from worker.sync.upsert import is_postgresql, key_filter
from worker.sync.writers.common import (
    BatchContext,
    Key,
    ModuleResult,
    Stored,
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
    result = ModuleResult()
    stored = _stored_versions(batch, messages)
    book = _book(batch, messages)
    rows = []
    for message in messages:
        ctx = batch.integrations[message.integration_id]
        key = record_key(message)
        row = batch.row(shape, message)
        version, deleted = stored.get(key, (None, False))
        if isinstance(message.event, ProjectEvent):
            client = message.event.data.primary_client
            if not is_newer(message, version, deleted):
                _link_unlinked(book, ctx, message)
                rows.append(row)
                continue
            verdict = NO_PRIMARY_CUSTOMER if client is None else book.link(ctx, client)
            if isinstance(verdict, Reason):
                batch.refusals.append(refusal(message, verdict))
                result.refused.add(key)
                continue
            if row.get("crm_id") and version is None:
                _adopt_local_project(batch, ctx, row["crm_id"], message.event.data.id)
        rows.append(row)
    book.flush()
    resolve_relations(batch, shape.relations, rows)
    result.applied = write_rows(batch, Project, rows)
    deleted_keys = [(r["integration_id"], r["source_id"]) for r in rows if r["deleted"]]
    _withdraw_children([k for k in deleted_keys if k in result.applied], batch)
    return result


def link_clients(batch: BatchContext, outdated: Sequence[QueueMessage]) -> None:
    """Customers for the primary clients of outdated project versions, if not linked yet.

    The project version lost to a newer one (perhaps a delete), but its client is a
    portal record of its own: the organization gets it whatever order events came in.
    """
    book = _book(batch, outdated)
    for message in outdated:
        _link_unlinked(book, batch.integrations[message.integration_id], message)
    book.flush()


def _link_unlinked(book: _Customers, ctx: RowContext, message: QueueMessage) -> None:
    if not isinstance(message.event, ProjectEvent) or message.event.data.primary_client is None:
        return
    client = message.event.data.primary_client
    if book.linked(ctx, client) is None:
        book.link(ctx, client)


def _stored_versions(
    batch: BatchContext, messages: Sequence[QueueMessage]
) -> dict[Key, tuple[Any, bool]]:
    found = batch.stored(Project, [record_key(m) for m in messages])
    return {key: (stored.version, stored.deleted) for key, stored in found.items()}


def _view(customer: Customer) -> CustomerView:
    return CustomerView(customer.id, customer.name, customer.email, customer.currency_code)


def _book(batch: BatchContext, messages: Sequence[QueueMessage]) -> _Customers:
    """The batch's customers book, reading the customers these messages' clients may
    already have."""
    book = batch.scratch.get("customers")
    if not isinstance(book, _Customers):
        book = batch.scratch["customers"] = _Customers(batch)
    book.read(
        [
            (batch.integrations[m.integration_id], m.event.data.primary_client)
            for m in messages
            if isinstance(m.event, ProjectEvent) and m.event.data.primary_client is not None
        ]
    )
    return book


class _Customers:
    """The customers that stand for the batch's primary clients, read in one query and
    then kept in memory: what ``link`` decides for one project, the next project of
    the batch sees (as it saw it in the database when each was linked and
    flushed on its own). Changes are flushed once, together."""

    def __init__(self, batch: BatchContext) -> None:
        self._batch = batch
        self._known: dict[int, Customer] = {}  # by object identity
        self._asked: set[tuple[str, str, str | None]] = set()

    def read(self, clients: Sequence[tuple[RowContext, PrimaryClient]]) -> None:
        asked = self._asked
        wanted = [(x, c) for x, c in clients if (x.integration_id, c.id, c.crm_id) not in asked]
        if not wanted:
            return
        self._asked |= {(ctx.integration_id, c.id, c.crm_id) for ctx, c in wanted}
        organizations = sorted({ctx.organization_id for ctx, _ in wanted})
        crm_ids = sorted({c.crm_id for _, c in wanted if c.crm_id})
        keys = {(ctx.integration_id, c.id) for ctx, c in wanted}
        session = self._batch.session
        by_crm = (
            Customer.crm_id == any_(bindparam("crm_ids", crm_ids, type_=ARRAY(String())))
            if is_postgresql(session)
            else Customer.crm_id.in_(crm_ids)
        )
        by_org = (
            Customer.organization_id
            == any_(bindparam("organizations", organizations, type_=ARRAY(String())))
            if is_postgresql(session)
            else Customer.organization_id.in_(organizations)
        )
        linked = key_filter(session, Customer, keys)
        found = session.scalars(
            select(Customer).where(
                by_org, Customer.deleted.is_(False), or_(linked, by_crm) if crm_ids else linked
            )
        )
        for customer in found:
            self._known[id(customer)] = customer

    def linked(self, ctx: RowContext, client: PrimaryClient) -> Customer | None:
        """The customer already standing for ``client``: same CRM id first, else same
        client id."""
        live = [
            c
            for c in self._known.values()
            if c.organization_id == ctx.organization_id and not c.deleted
        ]
        if client.crm_id:
            by_crm = [c for c in live if c.crm_id == client.crm_id]
            if by_crm:
                return _first(by_crm)
        same = [
            c for c in live if c.integration_id == ctx.integration_id and c.source_id == client.id
        ]
        return _first(same) if same else None

    def link(self, ctx: RowContext, client: PrimaryClient) -> Reason | None:
        """Create, update, overwrite or clone the invoicing customer for ``client``."""
        batch = self._batch
        session = batch.session
        linked = self.linked(ctx, client)
        match = (
            None
            if linked
            else pick_match(client, [_view(c) for c in _candidates(batch, ctx, client)])
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
        self._known[id(target)] = target
        return None

    def flush(self) -> None:
        """Write the customers' changes, and tell the batch the linked ones' ids."""
        self._batch.session.flush()
        for customer in self._known.values():
            if customer.integration_id and customer.source_id and not customer.deleted:
                key = (customer.integration_id, customer.source_id)
                self._batch.remember(Customer, key, Stored(customer.id, None, False))


def _first(customers: list[Customer]) -> Customer:
    """As the query's first row was: the oldest (a customer not yet written last)."""
    return min(customers, key=lambda c: (c.id is None, c.id or 0))


def _existing(batch: BatchContext, decision: CustomerDecision) -> Customer | None:
    if decision.action != "overwrite" or decision.customer_id is None:
        return None
    return batch.session.get(Customer, decision.customer_id)


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
    batch.forget(Project, [(ctx.integration_id, source_id)])


def _withdraw_children(deleted: list[Key], batch: BatchContext) -> None:
    if not deleted:
        return
    now = utcnow()
    for model in batch.project_children:
        table: Any = model
        batch.forget(model)  # their deleted flags change here
        stmt = update(table).where(
            tuple_(table.integration_id, table.project_source_id).in_(deleted),
            table.deleted.is_(False),
        )
        if model is Timesheet:
            stmt = stmt.where(table.billing_status == BillingStatus.UNBILLED)
        batch.session.execute(stmt.values(deleted=True, updated_at=now))
