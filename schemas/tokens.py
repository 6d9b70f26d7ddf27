"""API token bodies: ``/api/v1/tokens`` requests and answers (never a token's hash)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.responses import Timestamp

__all__ = ["TokenCreate", "TokenCreated", "TokenList", "TokenView"]


class TokenCreate(BaseModel):
    """POST /api/v1/tokens."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "viewer"] = "viewer"
    name: str | None = Field(default=None, min_length=1, max_length=100)


class TokenView(BaseModel):
    """A token as listed: what it is for and its life, not the token itself."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str | None
    role: str
    created_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None


class TokenCreated(TokenView):
    """The answer to a create: the token, shown this once (only its hash is kept)."""

    token: str


class TokenList(BaseModel):
    items: list[TokenView]
    next_cursor: None = None
