"""Webhook verification, pure: bytes, headers and secrets in, a verdict out.

Signature mode is Standard Webhooks, delegated to the reference library
``standardwebhooks`` (HMAC-SHA256 over ``id.timestamp.body``, any of several
space-separated signatures, constant-time compare, ±5 minutes). Token mode
compares a per-integration token with the stored hash in constant time.

The library's verifier decodes its secret when it is made, so one is kept per secret
(bounded, least recently used out) rather than made per request.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

from worker.accounts import hash_token
from worker.errors import Refused

__all__ = ["REQUIRED_HEADERS", "InvalidSignature", "verify_signature", "verify_token"]

REQUIRED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")

# Secrets of thousands of busy integrations (two each during a rotation); a verifier
# holds just its decoded key.
_VERIFIERS_KEPT = 4096


class InvalidSignature(Refused):
    """The request is not proven to come from the integration's sender."""


def verify_signature(body: bytes, headers: Mapping[str, str], secrets: Iterable[str]) -> None:
    """Pass silently if any valid secret signed ``body``; else raise InvalidSignature.

    Several secrets are accepted during a rotation. The library's own tolerance is
    ±300 s, which is the contract.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    present = {name: lowered.get(name, "") for name in REQUIRED_HEADERS}
    missing = [name for name, value in present.items() if not value]
    if missing:
        raise InvalidSignature(f"missing header(s): {', '.join(missing)}")
    last_error = "no signing secret is configured for this integration"
    for secret in secrets:
        try:
            _verifier(secret).verify(body, present, json_parse=False)
            return
        except Exception as exc:  # the library raises several types for malformed input
            last_error = str(exc) or type(exc).__name__
    raise InvalidSignature(last_error)


@lru_cache(maxsize=_VERIFIERS_KEPT)
def _verifier(secret: str) -> Webhook:
    """The verifier of ``secret`` (a malformed secret raises, and is not kept)."""
    return Webhook(secret)


def verify_token(provided: str | None, token_hash: str | None) -> None:
    """Pass if ``provided`` is the integration's webhook token; else raise InvalidSignature."""
    if not provided or not token_hash:
        raise InvalidSignature("missing webhook token")
    if not hmac.compare_digest(hash_token(provided), token_hash):
        raise InvalidSignature("wrong webhook token")
