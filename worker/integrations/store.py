"""Integrations: connect one portal to an organization, and the webhook secrets.

A webhook-only integration is ``active`` as soon as it is created; one with a
pull source starts in ``sync_in_progress`` (``worker.integrations.lifecycle`` requests its
initial sync). The rest of the lifecycle is in ``worker.integrations.lifecycle``.

Signing secrets are stored encrypted with the credential key (verifying an HMAC
needs the secret itself, so a hash will not do); a token-mode integration keeps
only its token's SHA-256.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from schemas.api import IntegrationCreate
from worker.accounts import hash_token
from worker.db import Integration, IntegrationSecret, IntegrationState, utcnow
from worker.errors import Conflict, NotFound
from worker.integrations.credential_box import (
    CredentialKeyMissing,
    is_sealed,
    open_secret,
    seal_secret,
    sealed_source,
)
from worker.settings import Settings

__all__ = [
    "CreatedIntegration",
    "WebhookCredentials",
    "create_integration",
    "get_integration",
    "new_webhook_secret",
    "organization_integrations",
    "rotate_secret",
    "webhook_credentials",
]


@dataclass(frozen=True)
class CreatedIntegration:
    integration: Integration
    webhook_secret: str | None
    webhook_token: str | None


@dataclass(frozen=True)
class WebhookCredentials:
    """What the gateway needs to verify a webhook for one integration."""

    integration_id: str
    deleted: bool
    verification: str
    secrets: tuple[str, ...]
    token_hash: str | None


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_integration(
    session: Session,
    organization_id: str,
    request: IntegrationCreate,
    *,
    settings: Settings | None = None,
) -> CreatedIntegration:
    """Connect a portal; an organization has at most one connected portal at a time.

    A pull source's credentials and the signing secret are stored encrypted with the
    settings' credential key.
    """
    existing = session.scalars(
        select(Integration).where(
            Integration.organization_id == organization_id, Integration.deleted_at.is_(None)
        )
    ).first()
    if existing is not None:
        raise Conflict(
            f"organization already has integration {existing.id} with portal "
            f"{existing.portal_id}; delete it before connecting another portal"
        )
    integration = Integration(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        portal_id=request.portal_id,
        status=IntegrationState.SYNC_IN_PROGRESS if request.source else IntegrationState.ACTIVE,
        modules=request.module_set(),
        invoiced_before=request.invoiced_before,
        customer_duplication=request.customer_duplication,
        restrict_project_creation=request.restrict_project_creation,
        field_map=request.model_dump(mode="json")["field_map"],
        verification=request.verification,
        source=sealed_source(request.source, settings) if request.source else None,
    )
    secret = token = None
    if request.verification == "token":
        token = "bwt_" + secrets.token_urlsafe(32)
        integration.webhook_token_hash = hash_token(token)
    else:
        secret = new_webhook_secret()
        integration.secrets.append(IntegrationSecret(secret=_sealed(secret, settings)))
    session.add(integration)
    session.flush()
    return CreatedIntegration(integration, secret, token)


def organization_integrations(session: Session, organization_id: str) -> list[Integration]:
    """All of an organization's integrations, deleted ones too, oldest first."""
    return list(
        session.scalars(
            select(Integration)
            .where(Integration.organization_id == organization_id)
            .order_by(Integration.created_at, Integration.id)
        )
    )


def get_integration(session: Session, organization_id: str, integration_id: str) -> Integration:
    integration = session.get(Integration, integration_id)
    if integration is None or integration.organization_id != organization_id:
        raise NotFound(f"no integration {integration_id}")
    return integration


def rotate_secret(
    session: Session, integration: Integration, overlap: timedelta, settings: Settings
) -> tuple[str, datetime]:
    """Add a new signing secret; the current ones stay valid for ``overlap``.

    Returns the new secret and when the previous ones stop being accepted. A previous
    secret still stored in clear (from before secrets were encrypted) is sealed now.
    """
    if integration.verification != "signature":
        raise Conflict("integration uses token verification; it has no signing secret")
    now = utcnow()
    for old in integration.secrets:
        if old.expires_at is None or old.expires_at > now + overlap:
            old.expires_at = now + overlap
        if not is_sealed(old.secret):
            old.secret = seal_secret(old.secret, settings)
    secret = new_webhook_secret()
    integration.secrets.append(
        IntegrationSecret(secret=seal_secret(secret, settings), created_at=now)
    )
    session.flush()
    return secret, now + overlap


def webhook_credentials(
    session: Session, integration_id: str, settings: Settings
) -> WebhookCredentials | None:
    """Credentials for verifying a webhook (secrets decrypted), or None for an unknown
    integration."""
    integration = session.get(Integration, integration_id)
    if integration is None:
        return None
    now = utcnow()
    valid = tuple(
        open_secret(s.secret, settings)
        for s in integration.secrets
        if s.expires_at is None or s.expires_at > now
    )
    return WebhookCredentials(
        integration_id=integration.id,
        deleted=integration.deleted_at is not None,
        verification=integration.verification,
        secrets=valid,
        token_hash=integration.webhook_token_hash,
    )


def _sealed(secret: str, settings: Settings | None) -> str:
    if settings is None:
        # A caller that stores a secret must hand over the key; never fall back to plaintext.
        raise CredentialKeyMissing("storing a webhook secret needs the settings with the key")
    return seal_secret(secret, settings)
