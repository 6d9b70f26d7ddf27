"""What can go wrong talking to the portal, as exceptions the pull knows how to report."""

from __future__ import annotations

from worker.errors import PermanentError, Unavailable

__all__ = ["PortalAuthFailed", "PortalError", "PortalUnavailable"]


class PortalError(PermanentError):
    """The portal answered with an error billsync cannot retry its way out of."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"portal answered {status} {code}: {message}")
        self.status = status
        self.code = code


class PortalAuthFailed(PortalError):
    """401/403, or an OAuth refresh refused: the integration's credentials are wrong or expired."""


class PortalUnavailable(Unavailable):
    """The portal kept failing (429/5xx/network) after every retry."""
