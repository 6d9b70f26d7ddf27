"""Secrets encrypted at rest (Fernet): pull-source credentials, webhook signing
secrets, and the key that opens them.

An integration's ``source`` is stored as ``{"base_url", "dc",
"credentials_encrypted", "credential_names"}``: the credentials (client secret,
refresh token, access token) only as a Fernet token, their names in clear so the
API can show which were given. ``pull_source`` opens it again for the pull.

The key is ``BILLSYNC_CREDENTIAL_KEY`` (``billsync zoho key`` makes one; several
keys separated by commas decrypt, the first encrypts, so a key can be rotated).
Without it, embedded mode (a SQLite database) keeps a generated key in
``DATA_DIR/credential.key``; with PostgreSQL the gateway and the worker may run on
different hosts, where a key file of their own would not match, so billsync
refuses instead of guessing.

Webhook signing secrets (``whsec_…``) are stored as a Fernet token of the secret
(``seal_secret``); a row written before they were encrypted still holds the
secret itself, which ``open_secret`` reads as it is until ``billsync keys
rotate`` (or the next rotation of the secret) seals it.

A pull source is checked against the allowed hosts when stored and again when
opened for a pull (``worker.portal.allowed_hosts``): a row stored before the
check existed must not send credentials elsewhere either.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from schemas.api import PullSource
from worker.errors import ConfigurationError
from worker.portal import check_source_hosts
from worker.settings import Settings

__all__ = [
    "KEY_FILE",
    "CredentialKeyChanged",
    "CredentialKeyError",
    "CredentialKeyInvalid",
    "CredentialKeyMissing",
    "credential_keys",
    "credential_names",
    "is_sealed",
    "new_key",
    "open_credentials",
    "open_secret",
    "pull_source",
    "reseal",
    "seal_credentials",
    "seal_secret",
    "sealed_source",
]

KEY_FILE = "credential.key"
_WEBHOOK_SECRET_PREFIX = "whsec_"  # a secret stored before secrets were sealed
_MAKE_ONE = (
    "make one with `billsync zoho key` (or python -c 'from cryptography.fernet import "
    "Fernet; print(Fernet.generate_key().decode())') and set BILLSYNC_CREDENTIAL_KEY to it "
    "for the gateway and the worker alike"
)


class CredentialKeyError(ConfigurationError):
    """The credential key is missing, malformed, or not the one that sealed the data."""


class CredentialKeyMissing(CredentialKeyError):
    """No key is configured and none may be generated (PostgreSQL)."""


class CredentialKeyInvalid(CredentialKeyError):
    """The configured key (or key file) is not a Fernet key."""


class CredentialKeyChanged(CredentialKeyError):
    """Stored credentials do not open with the current key."""


def new_key() -> str:
    """A new Fernet key (url-safe base64 of 32 random bytes)."""
    return Fernet.generate_key().decode()


def credential_keys(settings: Settings) -> list[bytes]:
    """The keys in use, the encrypting one first.

    Embedded mode without a configured key creates ``DATA_DIR/credential.key``
    (mode 0600) on first use and reuses it afterwards.
    """
    configured = settings.credential_key.get_secret_value().strip()
    if configured:
        return _parse_keys(configured, "BILLSYNC_CREDENTIAL_KEY")
    if not settings.database_url.startswith("sqlite"):
        raise CredentialKeyMissing(
            "BILLSYNC_CREDENTIAL_KEY is not set: with PostgreSQL, portal credentials are "
            f"encrypted with a key you provide; {_MAKE_ONE}"
        )
    key_file = settings.data_dir / KEY_FILE
    return _parse_keys(_embedded_key(key_file), str(key_file))


def seal_credentials(credentials: Mapping[str, str], settings: Settings) -> str:
    """The credentials as one Fernet token (text)."""
    plain = json.dumps(dict(credentials), sort_keys=True).encode()
    return _fernet(settings).encrypt(plain).decode()


def open_credentials(sealed: str, settings: Settings) -> dict[str, str]:
    """The credentials back from ``seal_credentials``; ``CredentialKeyChanged`` when
    the key is not the one that sealed them."""
    try:
        plain = _fernet(settings).decrypt(sealed.encode())
    except InvalidToken:
        raise CredentialKeyChanged(
            "the stored portal credentials do not decrypt: the credential key changed "
            "(BILLSYNC_CREDENTIAL_KEY, or DATA_DIR/credential.key in embedded mode). "
            "Restore the previous key (a comma-separated list may hold old and new), "
            "or give the integration its source credentials again."
        ) from None
    credentials: dict[str, str] = json.loads(plain)
    return credentials


def sealed_source(source: PullSource, settings: Settings | None) -> dict[str, Any]:
    """What an integration keeps of a pull source: the credentials sealed, their names."""
    if settings is None:
        # A caller that stores a source must hand over the key; never fall back to plaintext.
        raise CredentialKeyMissing(
            "storing a pull source needs the settings with the credential key"
        )
    dumped = source.model_dump(mode="json")
    check_source_hosts(dumped, settings)
    credentials: dict[str, str] = dumped.pop("credentials") or {}
    return {
        **dumped,
        "credentials_encrypted": seal_credentials(credentials, settings),
        "credential_names": sorted(credentials),
    }


def pull_source(
    integration_source: Mapping[str, Any] | None, settings: Settings
) -> dict[str, Any] | None:
    """The decrypted pull source (``base_url``, ``dc``, ``credentials``), or None.

    A row written before credentials were encrypted still has plaintext
    ``credentials``; it is read as it is.
    """
    if not integration_source:
        return None
    sealed = integration_source.get("credentials_encrypted")
    if sealed:
        credentials = open_credentials(str(sealed), settings)
    else:
        credentials = dict(integration_source.get("credentials") or {})
    opened = {
        "base_url": integration_source.get("base_url"),
        "dc": integration_source.get("dc") or "com",
        "credentials": credentials,
    }
    check_source_hosts(opened, settings)
    return opened


def seal_secret(secret: str, settings: Settings) -> str:
    """A webhook signing secret as stored: a Fernet token of it (text)."""
    return _fernet(settings).encrypt(secret.encode()).decode()


def open_secret(stored: str, settings: Settings) -> str:
    """The signing secret back from ``seal_secret``; a legacy plaintext secret as it is."""
    if not is_sealed(stored):
        return stored
    try:
        return _fernet(settings).decrypt(stored.encode()).decode()
    except InvalidToken:
        raise CredentialKeyChanged(
            "a stored webhook signing secret does not decrypt: the credential key changed "
            "(BILLSYNC_CREDENTIAL_KEY). Restore the previous key (a comma-separated list may "
            "hold old and new), or rotate the integration's secret."
        ) from None


def is_sealed(stored: str) -> bool:
    """False for a webhook secret stored in clear (before secrets were encrypted)."""
    return not stored.startswith(_WEBHOOK_SECRET_PREFIX)


def reseal(sealed: str, settings: Settings) -> str:
    """``sealed`` encrypted again with the first key (``billsync keys rotate``)."""
    try:
        return _fernet(settings).rotate(sealed.encode()).decode()
    except InvalidToken:
        raise CredentialKeyChanged(
            "a stored secret does not decrypt with any configured key: keep the old key in "
            "BILLSYNC_CREDENTIAL_KEY (after the new one) until the rotation is done"
        ) from None


def credential_names(integration_source: Mapping[str, Any]) -> list[str]:
    """The names of a stored source's credentials (never their values)."""
    if "credential_names" in integration_source:
        return sorted(integration_source["credential_names"] or [])
    return sorted(integration_source.get("credentials") or {})


def _fernet(settings: Settings) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in credential_keys(settings)])


def _parse_keys(text: str, where: str) -> list[bytes]:
    keys = [part.strip().encode() for part in text.split(",") if part.strip()]
    for key in keys:
        try:
            Fernet(key)
        except ValueError:
            raise CredentialKeyInvalid(
                f"{where} is not a Fernet key (32 url-safe base64-encoded bytes); {_MAKE_ONE}"
            ) from None
    if not keys:
        raise CredentialKeyInvalid(f"{where} is empty; {_MAKE_ONE}")
    return keys


def _embedded_key(path: Path) -> str:
    """The key file's key, creating the file first when there is none."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name (mkstemp makes it 0600), then linked into
    # place: a process starting at the same moment sees either no file or the full
    # key, and link refuses to replace the key another process put there first.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".credential-key-")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(new_key() + "\n")
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won: use its key
    finally:
        os.unlink(temporary)
    return path.read_text().strip()
