"""``billsync keys rotate``: everything sealed with the credential key, sealed again
with the first key, and what is still stored in clear, sealed.

Rotating ``BILLSYNC_CREDENTIAL_KEY``: put the new key first and keep the old one after
it (``new,old``), restart the gateway and the worker, run this, then drop the old key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from worker.db import Integration, IntegrationSecret
from worker.integrations.credential_box import is_sealed, reseal, seal_credentials, seal_secret
from worker.settings import Settings

__all__ = ["RotationReport", "rotate_keys"]


@dataclass(frozen=True)
class RotationReport:
    sources_resealed: int
    sources_sealed: int  # pull sources whose credentials were still in clear
    secrets_resealed: int
    secrets_sealed: int  # webhook signing secrets that were still in clear

    def view(self) -> dict[str, int]:
        return {
            "sources_resealed": self.sources_resealed,
            "sources_sealed": self.sources_sealed,
            "secrets_resealed": self.secrets_resealed,
            "secrets_sealed": self.secrets_sealed,
        }


def rotate_keys(session: Session, settings: Settings) -> RotationReport:
    """Re-encrypt every stored secret with the first key (one transaction: the caller's)."""
    sources_resealed = sources_sealed = secrets_resealed = secrets_sealed = 0
    for integration in session.scalars(select(Integration).where(Integration.source.is_not(None))):
        source = dict(integration.source or {})
        if source.get("credentials_encrypted"):
            source["credentials_encrypted"] = reseal(str(source["credentials_encrypted"]), settings)
            sources_resealed += 1
        elif "credentials" in source:
            credentials: dict[str, str] = dict(source.pop("credentials") or {})
            source["credentials_encrypted"] = seal_credentials(credentials, settings)
            source["credential_names"] = sorted(credentials)
            sources_sealed += 1
        else:
            continue
        integration.source = source  # a new dict, so the JSON column is written
    for row in session.scalars(select(IntegrationSecret)):
        if is_sealed(row.secret):
            row.secret = reseal(row.secret, settings)
            secrets_resealed += 1
        else:
            row.secret = seal_secret(row.secret, settings)
            secrets_sealed += 1
    session.flush()
    return RotationReport(sources_resealed, sources_sealed, secrets_resealed, secrets_sealed)
