"""Organizations and their API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, validates

from worker.db.base import Base, utcnow
from worker.errors import Refused

__all__ = ["ApiToken", "BlankName", "InvoiceUser", "Organization", "StatusSession"]


class BlankName(Refused):
    """A name that is empty or only white space: nobody could tell the record apart."""


class Organization(Base):
    """An invoicing organization: the tenant every record belongs to."""

    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @validates("name")
    def _named(self, _key: str, name: str) -> str:
        if not name.strip():
            raise BlankName("an organization needs a name that is not blank")
        return name


class ApiToken(Base):
    """A bearer token scoped to one organization. Only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    name: Mapped[str | None] = mapped_column(String(100))
    last_used_at: Mapped[datetime | None]


class StatusSession(Base):
    """A status-page login: the cookie holds a random id, only its SHA-256 is stored.

    It stands for the token that logged in, so revoking the token ends it too.
    """

    __tablename__ = "status_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class InvoiceUser(Base):
    """A user of the invoicing organization (matched by email against portal users).

    Emails are stored lower-cased so matching is exact and indexed.
    """

    __tablename__ = "invoice_users"
    __table_args__ = (UniqueConstraint("organization_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str]
    email: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
