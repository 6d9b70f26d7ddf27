"""The header names billsync defines, each once: on queue messages and on webhooks.

Tools filter and route on these, and dead letters keep them, so a name written two
ways would split what should be one. Tests may spell them out: that checks them.
"""

from __future__ import annotations

__all__ = [
    "ACTION_HEADER",
    "ATTEMPTS_HEADER",
    "DEAD_LETTER_HEADERS",
    "ERROR_CLASS_HEADER",
    "ERROR_MESSAGE_HEADER",
    "EVENT_ID_HEADER",
    "FIRST_FAILURE_HEADER",
    "INTEGRATION_ID_HEADER",
    "LAST_FAILURE_HEADER",
    "MODULE_HEADER",
    "ORIGINAL_ROUTING_KEY_HEADER",
    "SOURCE_HEADER",
    "TRACEBACK_HEADER",
    "WEBHOOK_TOKEN_HEADER",
]

# On every queue message (AMQP headers), so tools need not parse the body.
EVENT_ID_HEADER = "event-id"
INTEGRATION_ID_HEADER = "integration-id"
MODULE_HEADER = "module"
ACTION_HEADER = "action"
SOURCE_HEADER = "source"

# Added to a message when it is dead-lettered: why, how often and when it failed.
ERROR_CLASS_HEADER = "x-billsync-error-class"
ERROR_MESSAGE_HEADER = "x-billsync-error-message"
TRACEBACK_HEADER = "x-billsync-traceback"
ATTEMPTS_HEADER = "x-billsync-attempts"
FIRST_FAILURE_HEADER = "x-billsync-first-failure"
LAST_FAILURE_HEADER = "x-billsync-last-failure"
ORIGINAL_ROUTING_KEY_HEADER = "x-billsync-original-routing-key"
DEAD_LETTER_HEADERS = (
    ERROR_CLASS_HEADER,
    ERROR_MESSAGE_HEADER,
    TRACEBACK_HEADER,
    ATTEMPTS_HEADER,
    FIRST_FAILURE_HEADER,
    LAST_FAILURE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
)

# A webhook's token, in token verification (or the ``token`` query parameter).
WEBHOOK_TOKEN_HEADER = "X-Billsync-Token"
