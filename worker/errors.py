"""The billsync error tree. Imports nothing of ours.

BillsyncError
├── TransientError          retry later (broker or database hiccup)
│   └── BrokerUnavailable   a publish was not confirmed in time
├── PermanentError          never succeeds as sent: dead-letter it
│   └── UndecodableMessage  a queue body that is not a QueueMessage
├── RuleRejection           a sync rule refused a record (error summary)
├── NotFound                no such record for this organization
└── Conflict                the request contradicts the current state
"""

from __future__ import annotations

__all__ = [
    "BillsyncError",
    "BrokerUnavailable",
    "Conflict",
    "NotFound",
    "PermanentError",
    "RuleRejection",
    "TransientError",
    "UndecodableMessage",
]


class BillsyncError(Exception):
    """Root of every error billsync raises on purpose."""


class TransientError(BillsyncError):
    """May succeed if tried again later."""


class BrokerUnavailable(TransientError):
    """The broker did not accept and confirm a publish within the configured bounds."""


class PermanentError(BillsyncError):
    """Will fail the same way every time: dead-letter, do not retry."""


class UndecodableMessage(PermanentError):
    """A queue message whose body is not a valid QueueMessage."""


class RuleRejection(BillsyncError):
    """A sync rule refused a record; ``reason`` is the error-summary code."""

    def __init__(self, reason: str, message: str, resolution: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.resolution = resolution


class NotFound(BillsyncError):
    """No such record, or it belongs to another organization (never say which)."""


class Conflict(BillsyncError):
    """The request contradicts the current state (for example a second portal)."""


class IntegrationGone(Conflict):
    """The integration was deleted; it cannot change any more."""
