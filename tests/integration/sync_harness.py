"""A small harness for the sync-rule tests: one integration, apply events, read the state."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from schemas.api import CustomerCreate, IntegrationCreate, InvoiceUserCreate
from tests.conftest import CREDENTIAL_KEY
from tests.events import Event, message
from worker.accounts.invoicing_side import create_customer, create_invoice_user
from worker.db import Customer, StaffUser, SyncedRecord, SyncError
from worker.integrations.store import create_integration
from worker.settings import Settings
from worker.sync.apply import apply_batch

# Signing secrets are stored sealed: the harness seals with the suite's key.
KEYED = Settings(credential_key=CREDENTIAL_KEY)


@dataclass
class Sync:
    sessions: sessionmaker[Session]
    organization_id: str
    integration_id: str

    def apply(self, *events: Event) -> list[str]:
        """Apply ``events`` as one batch; their outcome statuses."""
        messages = [message(event, self.integration_id) for event in events]
        with self.sessions.begin() as session:
            return [o.status for o in apply_batch(session, messages)]

    def row(self, model: type[SyncedRecord], source_id: str) -> Any:
        table: Any = model
        with self.sessions() as session:
            return session.scalars(
                select(table).where(
                    table.integration_id == self.integration_id, table.source_id == source_id
                )
            ).one_or_none()

    def live(self, model: type[SyncedRecord]) -> set[str]:
        table: Any = model
        with self.sessions() as session:
            return set(
                session.scalars(
                    select(table.source_id).where(
                        table.organization_id == self.organization_id, table.deleted.is_(False)
                    )
                )
            )

    def errors(self, *, resolved: bool | None = False) -> list[tuple[str, str, str, int]]:
        """(module, source_id, reason, count) of the error summary."""
        with self.sessions() as session:
            stmt = select(SyncError).where(SyncError.integration_id == self.integration_id)
            if resolved is not None:
                stmt = stmt.where(SyncError.resolved.is_(resolved))
            return sorted((e.module, e.source_id, e.reason, e.count) for e in session.scalars(stmt))

    def error(self, module: str, source_id: str, reason: str) -> SyncError:
        with self.sessions() as session:
            return session.scalars(
                select(SyncError).where(
                    SyncError.integration_id == self.integration_id,
                    SyncError.module == module,
                    SyncError.source_id == source_id,
                    SyncError.reason == reason,
                )
            ).one()

    def customers(self) -> list[Customer]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(Customer)
                    .where(Customer.organization_id == self.organization_id)
                    .order_by(Customer.id)
                )
            )

    def add_customer(self, **fields: Any) -> int:
        with self.sessions.begin() as session:
            return create_customer(session, self.organization_id, CustomerCreate(**fields)).id

    def add_user(self, email: str, name: str = "Someone") -> None:
        with self.sessions.begin() as session:
            create_invoice_user(
                session, self.organization_id, InvoiceUserCreate(name=name, email=email)
            )

    def staff(self, source_id: str) -> StaffUser:
        staff: StaffUser = self.row(StaffUser, source_id)
        return staff


def connect(sessions: sessionmaker[Session], organization_id: str, **settings: Any) -> Sync:
    fields = {"portal_id": f"portal-{uuid.uuid4().hex[:6]}", "modules": ["timesheets"], **settings}
    with sessions.begin() as session:
        created = create_integration(
            session, organization_id, IntegrationCreate(**fields), settings=KEYED
        )
        return Sync(sessions, organization_id, created.integration.id)
