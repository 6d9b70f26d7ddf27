"""Organizations and API tokens: create, and authenticate a bearer token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.db import ApiToken, Organization
from worker.errors import NotFound

__all__ = ["Principal", "Role", "authenticate", "create_organization", "create_token", "hash_token"]

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organization and a role."""

    organization_id: str
    role: Role
    token_id: str = ""  # which token (for audit records), never the token itself

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_token(token: str) -> str:
    # Tokens are 256-bit random, so a plain SHA-256 is enough to store them safely.
    return hashlib.sha256(token.encode()).hexdigest()


def create_organization(session: Session, name: str) -> tuple[Organization, str]:
    """Create an organization and its first admin token (returned once, in clear)."""
    organization = Organization(id=str(uuid.uuid4()), name=name)
    session.add(organization)
    session.flush()
    return organization, create_token(session, organization.id, "admin")


def create_token(session: Session, organization_id: str, role: Role) -> str:
    """Create a bearer token for ``organization_id``; only its hash is stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if session.get(Organization, organization_id) is None:
        raise NotFound(f"no organization {organization_id}")
    token = "bst_" + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            id=str(uuid.uuid4()),
            organization_id=organization_id,
            role=role,
            token_hash=hash_token(token),
        )
    )
    return token


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None if unknown or revoked."""
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).first()
    if row is None or row.role not in ROLES:
        return None
    role: Role = "admin" if row.role == "admin" else "viewer"
    return Principal(row.organization_id, role, row.id)
