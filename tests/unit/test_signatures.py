"""Standard Webhooks verification: the six-case vector, rotation, and token mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.support import signed_headers
from webhook_gateway.signatures import InvalidSignature, verify_signature, verify_token
from worker.accounts.organizations import hash_token
from worker.integrations.store import new_webhook_secret

BODY = b'{"module":"projects","action":"created"}'


@pytest.fixture
def secret() -> str:
    return new_webhook_secret()


def test_valid_signature_passes(secret: str) -> None:
    verify_signature(BODY, signed_headers(secret, BODY), [secret])


def test_several_signatures_pass_when_one_is_valid(secret: str) -> None:
    headers = signed_headers(secret, BODY)
    other = signed_headers(new_webhook_secret(), BODY, msg_id=headers["webhook-id"])
    headers["webhook-signature"] = f"{other['webhook-signature']} {headers['webhook-signature']}"
    verify_signature(BODY, headers, [secret])


def test_tampered_body_is_rejected(secret: str) -> None:
    headers = signed_headers(secret, BODY)
    with pytest.raises(InvalidSignature):
        verify_signature(BODY.replace(b"created", b"deleted"), headers, [secret])


def test_wrong_secret_is_rejected(secret: str) -> None:
    headers = signed_headers(new_webhook_secret(), BODY)
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, headers, [secret])


@pytest.mark.parametrize("skew", [timedelta(seconds=-301), timedelta(seconds=301)])
def test_timestamp_outside_five_minutes_is_rejected(secret: str, skew: timedelta) -> None:
    headers = signed_headers(secret, BODY, at=datetime.now(UTC) + skew)
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, headers, [secret])


def test_timestamp_within_tolerance_passes(secret: str) -> None:
    headers = signed_headers(secret, BODY, at=datetime.now(UTC) - timedelta(seconds=290))
    verify_signature(BODY, headers, [secret])


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_rejected_and_named(secret: str, header: str) -> None:
    headers = signed_headers(secret, BODY)
    del headers[header]
    with pytest.raises(InvalidSignature, match=header):
        verify_signature(BODY, headers, [secret])


def test_header_names_are_case_insensitive(secret: str) -> None:
    headers = {k.upper(): v for k, v in signed_headers(secret, BODY).items()}
    verify_signature(BODY, headers, [secret])


def test_any_current_secret_passes_during_rotation(secret: str) -> None:
    old = new_webhook_secret()
    verify_signature(BODY, signed_headers(old, BODY), [secret, old])


def test_malformed_signature_header_is_rejected_not_crashing(secret: str) -> None:
    headers = signed_headers(secret, BODY)
    headers["webhook-signature"] = "garbage-without-comma"
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, headers, [secret])


def test_no_secret_configured_rejects(secret: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(BODY, signed_headers(secret, BODY), [])


def test_token_mode_accepts_the_integration_token() -> None:
    verify_token("bwt_right", hash_token("bwt_right"))


@pytest.mark.parametrize("provided", ["bwt_wrong", "", None])
def test_token_mode_rejects_wrong_or_missing_token(provided: str | None) -> None:
    with pytest.raises(InvalidSignature):
        verify_token(provided, hash_token("bwt_right"))
