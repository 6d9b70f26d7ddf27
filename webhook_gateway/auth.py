"""Bearer-token authentication for the management and read API.

Every request looks its token up (no cache), so a revoked token is refused at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from webhook_gateway.errors import ApiError
from webhook_gateway.services import services
from worker.accounts import Principal, authenticate

__all__ = ["ROLE_ATTRIBUTE", "principal", "require"]

F = TypeVar("F", bound=Callable[..., Any])

# Set on a guarded view: the OpenAPI document adds its bearer security and 401/403.
ROLE_ATTRIBUTE = "billsync_role"


def require(role: str) -> Callable[[F], F]:
    """Only callers with a valid token of ``role`` (admin also satisfies viewer)."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiError(401, "unauthorized", "send Authorization: Bearer <token>")
            # A write: authenticate notes the token's last use (at most once a minute).
            with services().write() as session:
                found = authenticate(session, token.strip())
            if found is None:
                raise ApiError(401, "unauthorized", "unknown or revoked token")
            if role == "admin" and not found.is_admin:
                raise ApiError(403, "forbidden", "this action needs an admin token")
            g.principal = found
            return view(*args, **kwargs)

        vars(wrapped)[ROLE_ATTRIBUTE] = role
        return wrapped  # type: ignore[return-value]

    return decorator


def principal() -> Principal:
    found: Principal = g.principal
    return found
