"""Status-page logins: server-side sessions instead of the bearer token in a cookie.

The cookie carries a random session id; the database keeps only its SHA-256, with
an expiry and the token that logged in. A session ends at logout, at its expiry,
or when its token is revoked, whichever comes first. The session id also keys the
session's CSRF token (an HMAC of a fixed label), so forms need no stored state and
a page of another site cannot know it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.accounts.organizations import Principal, mark_used, principal_of
from worker.db import ApiToken, StatusSession, utcnow

__all__ = ["LoggedIn", "csrf_token", "end_session", "find_session", "start_session"]

_CSRF_LABEL = b"billsync status page csrf"


@dataclass(frozen=True)
class LoggedIn:
    """A live session: who it stands for, and its CSRF token for the page's forms."""

    principal: Principal
    csrf_token: str


def start_session(session: Session, principal: Principal, lifetime: timedelta) -> str:
    """A new session for ``principal``'s token; returns the id for the cookie (once)."""
    now = utcnow()
    # Expired sessions are only clutter (lookups refuse them): sweep them at each login.
    session.execute(delete(StatusSession).where(StatusSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    session.add(
        StatusSession(
            id_hash=_hash(session_id),
            token_id=principal.token_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    session.flush()
    return session_id


def find_session(session: Session, session_id: str) -> LoggedIn | None:
    """The live session of ``session_id``: not ended, not expired, its token not revoked."""
    if not session_id:
        return None
    found = session.execute(
        select(StatusSession, ApiToken)
        .join(ApiToken, ApiToken.id == StatusSession.token_id)
        .where(
            StatusSession.id_hash == _hash(session_id),
            StatusSession.ended_at.is_(None),
            StatusSession.expires_at > utcnow(),
        )
    ).first()
    if found is None:
        return None
    token = found[1]
    principal = principal_of(token)
    if principal is None:
        return None
    mark_used(token)
    return LoggedIn(principal, csrf_token(session_id))


def end_session(session: Session, session_id: str) -> None:
    """Log out: the session id is refused from now on."""
    row = session.get(StatusSession, _hash(session_id)) if session_id else None
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()


def _hash(session_id: str) -> str:
    # 256 random bits: a plain SHA-256 keeps a database reader from using the ids.
    return hashlib.sha256(session_id.encode()).hexdigest()
