"""Records made on the invoicing side: customers, users of the organization, projects."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas.api import CustomerCreate, InvoiceUserCreate, ProjectCreate
from worker.db import Customer, Integration, InvoiceUser, Project
from worker.errors import Conflict, NotFound, Refused
from worker.sync import normalize_email, promote_staff

__all__ = ["ProjectCreationRestricted", "create_customer", "create_invoice_user", "create_project"]


class ProjectCreationRestricted(Refused):
    """The connected integration forbids creating projects on the invoicing side."""


def create_customer(session: Session, organization_id: str, body: CustomerCreate) -> Customer:
    customer = Customer(
        organization_id=organization_id,
        name=body.name,
        email=body.email,
        currency_code=body.currency_code.upper(),
        crm_id=body.crm_id,
    )
    session.add(customer)
    session.flush()
    return customer


def create_invoice_user(
    session: Session, organization_id: str, body: InvoiceUserCreate
) -> InvoiceUser:
    """Add a user to the organization; that user's staff records become project staff."""
    user = InvoiceUser(
        organization_id=organization_id, name=body.name, email=normalize_email(body.email)
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"{body.email} is already a user of the organization") from exc
    promote_staff(session, organization_id, body.email)
    return user


def create_project(session: Session, organization_id: str, body: ProjectCreate) -> Project:
    """A local project, unless the connected integration restricts project creation."""
    restricting = session.scalars(
        select(Integration).where(
            Integration.organization_id == organization_id,
            Integration.deleted_at.is_(None),
            Integration.restrict_project_creation.is_(True),
        )
    ).first()
    if restricting is not None:
        raise ProjectCreationRestricted(
            "project creation is restricted by the integration setting "
            f"restrict_project_creation (integration {restricting.id}); create the project "
            "in the portal instead"
        )
    customer = session.get(Customer, body.customer_id)
    if customer is None or customer.organization_id != organization_id or customer.deleted:
        raise NotFound(f"no customer {body.customer_id}")
    project = Project(
        organization_id=organization_id,
        name=body.name,
        customer_id=customer.id,
        currency_code=customer.currency_code,
        billing_type=body.billing_type,
        crm_id=body.crm_id,
        standalone=True,
    )
    session.add(project)
    session.flush()
    return project
