"""Organizations and API tokens: create, list, revoke, and authenticate a bearer token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from worker.db import ApiToken, Organization, StatusSession, utcnow
from worker.errors import NotFound

__all__ = [
    "ROLES",
    "IssuedToken",
    "Principal",
    "Role",
    "authenticate",
    "create_organization",
    "create_token",
    "hash_token",
    "issue_token",
    "list_tokens",
    "mark_used",
    "principal_of",
    "revoke_token",
]

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")
# "Last used" is for people deciding what to revoke: minutes are precise enough, and
# writing it at most once a minute per token keeps a write off most requests.
LAST_USED_PRECISION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organization and a role."""

    organization_id: str
    role: Role
    token_id: str = ""  # which token (for audit records), never the token itself

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True)
class IssuedToken:
    """A new token: its row and the token itself (shown once, never stored)."""

    row: ApiToken
    token: str


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
    return issue_token(session, organization_id, role).token


def issue_token(
    session: Session, organization_id: str, role: Role, name: str | None = None
) -> IssuedToken:
    """Create a bearer token (optionally named, to tell tokens apart in the list)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if session.get(Organization, organization_id) is None:
        raise NotFound(f"no organization {organization_id}")
    token = "bst_" + secrets.token_urlsafe(32)
    row = ApiToken(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        role=role,
        token_hash=hash_token(token),
        name=name or None,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return IssuedToken(row, token)


def list_tokens(session: Session, organization_id: str) -> list[ApiToken]:
    """The organization's tokens, revoked ones too, oldest first."""
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.organization_id == organization_id)
            .order_by(ApiToken.created_at, ApiToken.id)
        )
    )


def revoke_token(session: Session, token_id: str, organization_id: str | None = None) -> ApiToken:
    """Revoke a token at once, with the status-page sessions it opened.

    ``organization_id`` scopes the lookup (the API); None is the operator (CLI).
    Revoking a revoked token changes nothing and keeps the first revocation time.
    """
    row = session.get(ApiToken, token_id)
    if row is None or (organization_id is not None and row.organization_id != organization_id):
        raise NotFound(f"no token {token_id}")
    now = utcnow()
    if row.revoked_at is None:
        row.revoked_at = now
    session.execute(
        update(StatusSession)
        .where(StatusSession.token_id == row.id, StatusSession.ended_at.is_(None))
        .values(ended_at=now)
    )
    session.flush()
    return row


def authenticate(session: Session, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None if unknown or revoked.

    Notes when the token was last used (at most once a minute); the caller commits.
    """
    row = session.scalars(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).first()
    if row is None:
        return None
    mark_used(row)
    return principal_of(row)


def principal_of(row: ApiToken) -> Principal | None:
    """The principal of a live token row (None for an unknown role)."""
    if row.revoked_at is not None or row.role not in ROLES:
        return None
    role: Role = "admin" if row.role == "admin" else "viewer"
    return Principal(row.organization_id, role, row.id)


def mark_used(row: ApiToken) -> None:
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION:
        row.last_used_at = now
