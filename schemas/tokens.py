"""API token bodies: ``/api/v1/tokens`` requests and answers (never a token's hash)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["TokenCreate", "TokenCreated", "TokenList", "TokenView"]


class TokenCreate(BaseModel):
    """POST /api/v1/tokens."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["admin", "viewer"] = "viewer"
    name: str | None = Field(default=None, min_length=1, max_length=100)


class TokenView(BaseModel):
    """A token as listed: what it is for and its life, not the token itself."""

    id: str
    name: str | None
    role: str
    created_at: AwareDatetime
    last_used_at: AwareDatetime | None
    revoked_at: AwareDatetime | None


class TokenCreated(TokenView):
    """The answer to a create: the token, shown this once (only its hash is kept)."""

    token: str


class TokenList(BaseModel):
    items: list[TokenView]
    next_cursor: None = None
