"""Pull-source credentials at rest: sealed with Fernet, opened for the pull, key handling."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from schemas.api import PullSource
from worker.integrations.credential_box import (
    KEY_FILE,
    CredentialKeyChanged,
    CredentialKeyInvalid,
    CredentialKeyMissing,
    credential_names,
    is_sealed,
    open_credentials,
    open_secret,
    pull_source,
    reseal,
    seal_credentials,
    seal_secret,
    sealed_source,
)
from worker.settings import Settings

SECRETS = {
    "client_id": "1000.CLIENTID",
    "client_secret": "secret-client-secret-789",
    "refresh_token": "1000.secret-refresh-token.def456",
}
POSTGRES = "postgresql://billsync@localhost/billsync"


def embedded(tmp_path: Path) -> Settings:
    # portal.test: the sources here name a test host, which pulls must be allowed to reach.
    return Settings(data_dir=tmp_path, credential_key="", portal_allowed_hosts="portal.test")


def with_key(tmp_path: Path, key: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=POSTGRES, credential_key=key)


def test_credentials_come_back_as_they_were_sealed(tmp_path: Path) -> None:
    settings = with_key(tmp_path, Fernet.generate_key().decode())

    sealed = seal_credentials(SECRETS, settings)

    assert open_credentials(sealed, settings) == SECRETS
    for value in SECRETS.values():
        assert value not in sealed


def test_another_key_cannot_open_them_and_says_the_key_changed(tmp_path: Path) -> None:
    sealed = seal_credentials(SECRETS, with_key(tmp_path, Fernet.generate_key().decode()))

    with pytest.raises(CredentialKeyChanged) as raised:
        open_credentials(sealed, with_key(tmp_path, Fernet.generate_key().decode()))

    assert "credential key changed" in str(raised.value)


def test_a_key_list_opens_what_the_old_key_sealed(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = seal_credentials(SECRETS, with_key(tmp_path, old))

    assert open_credentials(sealed, with_key(tmp_path, f"{new},{old}")) == SECRETS


def test_embedded_mode_creates_a_private_key_file_on_first_use(tmp_path: Path) -> None:
    seal_credentials(SECRETS, embedded(tmp_path))

    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    Fernet(key_file.read_text().strip())  # a valid key


def test_embedded_mode_reuses_its_key_file(tmp_path: Path) -> None:
    sealed = seal_credentials(SECRETS, embedded(tmp_path))
    key = (tmp_path / KEY_FILE).read_text()

    assert open_credentials(sealed, embedded(tmp_path)) == SECRETS
    assert (tmp_path / KEY_FILE).read_text() == key


def test_postgresql_without_a_key_is_refused_with_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CredentialKeyMissing) as raised:
        seal_credentials(SECRETS, with_key(tmp_path, ""))

    assert "BILLSYNC_CREDENTIAL_KEY" in str(raised.value)
    assert "billsync zoho key" in str(raised.value)
    assert not (tmp_path / KEY_FILE).exists()


def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CredentialKeyInvalid) as raised:
        seal_credentials(SECRETS, with_key(tmp_path, "not-a-fernet-key"))

    assert "not-a-fernet-key" not in str(raised.value)


def test_a_stored_source_keeps_the_names_but_no_secret(tmp_path: Path) -> None:
    source = PullSource.model_validate({"dc": "eu", "credentials": SECRETS})

    stored = sealed_source(source, embedded(tmp_path))

    assert stored["dc"] == "eu" and stored["base_url"] is None
    assert stored["credential_names"] == ["client_id", "client_secret", "refresh_token"]
    assert "credentials" not in stored
    text = json.dumps(stored)
    for value in SECRETS.values():
        assert value not in text


def test_storing_a_source_without_the_settings_is_refused() -> None:
    source = PullSource.model_validate({"credentials": {"access_token": "t"}})

    with pytest.raises(CredentialKeyMissing):
        sealed_source(source, None)


def test_the_pull_gets_the_source_back_decrypted(tmp_path: Path) -> None:
    settings = embedded(tmp_path)
    source = PullSource.model_validate(
        {"base_url": "http://portal.test", "dc": "eu", "credentials": SECRETS}
    )

    assert pull_source(sealed_source(source, settings), settings) == {
        "base_url": "http://portal.test/",
        "dc": "eu",
        "credentials": SECRETS,
    }


def test_a_legacy_row_with_plaintext_credentials_is_read_as_it_is(tmp_path: Path) -> None:
    legacy = {"base_url": "http://portal.test", "credentials": {"access_token": "t"}}

    assert pull_source(legacy, embedded(tmp_path)) == {
        "base_url": "http://portal.test",
        "dc": "com",
        "credentials": {"access_token": "t"},
    }
    assert not (tmp_path / KEY_FILE).exists()  # nothing to decrypt, no key needed


def test_no_source_is_none(tmp_path: Path) -> None:
    assert pull_source(None, embedded(tmp_path)) is None


def test_credential_names_of_new_and_legacy_rows() -> None:
    assert credential_names({"credential_names": ["refresh_token", "client_id"]}) == [
        "client_id",
        "refresh_token",
    ]
    assert credential_names({"credentials": {"access_token": "t"}}) == ["access_token"]


WEBHOOK_SECRET = "whsec_" + "A" * 43 + "="


def test_a_webhook_secret_is_sealed_and_opens_again(tmp_path: Path) -> None:
    settings = with_key(tmp_path, Fernet.generate_key().decode())

    sealed = seal_secret(WEBHOOK_SECRET, settings)

    assert is_sealed(sealed) and WEBHOOK_SECRET not in sealed
    assert len(sealed) <= 255  # the column's width
    assert open_secret(sealed, settings) == WEBHOOK_SECRET


def test_a_webhook_secret_stored_in_clear_is_read_as_it_is(tmp_path: Path) -> None:
    assert not is_sealed(WEBHOOK_SECRET)
    assert open_secret(WEBHOOK_SECRET, embedded(tmp_path)) == WEBHOOK_SECRET


def test_reseal_moves_a_secret_to_the_first_key(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = seal_secret(WEBHOOK_SECRET, with_key(tmp_path, old))

    resealed = reseal(sealed, with_key(tmp_path, f"{new},{old}"))

    assert open_secret(resealed, with_key(tmp_path, new)) == WEBHOOK_SECRET
    with pytest.raises(CredentialKeyChanged):
        open_secret(sealed, with_key(tmp_path, new))
