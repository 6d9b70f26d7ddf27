"""Zoho credentials through the API: stored encrypted, shown by name, opened by the pull."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org
from webhook_gateway import create_app
from worker.db import Integration, SyncRun
from worker.integrations.credential_box import pull_source
from worker.messaging.publisher import Publisher
from worker.pull.runner import PullRunner
from worker.settings import Settings

SECRETS = {
    "client_id": "1000.CLIENTID",
    "client_secret": "secret-client-secret-789",
    "refresh_token": "1000.secret-refresh-token.def456",
}


def connect(client: FlaskClient, org: Org, **source: Any) -> str:
    body = {
        "portal_id": "portal-1",
        "modules": ["timesheets"],
        "source": {"dc": "eu", "credentials": SECRETS, **source},
    }
    response = client.post("/api/v1/integrations", json=body, headers=org.auth())
    assert response.status_code == 201, response.get_json()
    integration_id: str = response.get_json()["id"]
    return integration_id


def stored_source(sessions: sessionmaker[Session], integration_id: str) -> dict[str, Any]:
    with sessions() as session:
        integration = session.get(Integration, integration_id)
        assert integration is not None and integration.source is not None
        return dict(integration.source)


def assert_no_secret_in(text: str) -> None:
    for value in SECRETS.values():
        assert value not in text


def test_the_stored_source_holds_no_plaintext_secret(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    integration_id = connect(client, org)

    stored = stored_source(pg_sessions, integration_id)

    assert_no_secret_in(json.dumps(stored))
    assert stored["dc"] == "eu"
    assert stored["credential_names"] == ["client_id", "client_secret", "refresh_token"]
    assert stored["credentials_encrypted"]


def test_the_integration_shows_credential_names_only(client: FlaskClient, org: Org) -> None:
    integration_id = connect(client, org)

    response = client.get(f"/api/v1/integrations/{integration_id}", headers=org.auth())

    assert response.get_json()["source"] == {
        "base_url": None,
        "dc": "eu",
        "credentials": ["client_id", "client_secret", "refresh_token"],
    }
    assert_no_secret_in(response.get_data(as_text=True))


def test_a_changed_source_is_stored_encrypted_too(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    integration_id = connect(client, org, credentials={"access_token": "old-token"})

    response = client.patch(
        f"/api/v1/integrations/{integration_id}",
        json={"source": {"dc": "com.au", "credentials": SECRETS}},
        headers=org.auth(),
    )

    assert response.status_code == 200, response.get_json()
    stored = stored_source(pg_sessions, integration_id)
    assert stored["dc"] == "com.au" and "credentials" not in stored
    assert_no_secret_in(json.dumps(stored))


def test_the_pull_opens_what_the_api_stored(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session], settings: Settings
) -> None:
    integration_id = connect(client, org, base_url="http://portal.test")

    opened = pull_source(stored_source(pg_sessions, integration_id), settings)

    assert opened == {"base_url": "http://portal.test/", "dc": "eu", "credentials": SECRETS}


def test_a_credential_set_of_neither_shape_is_refused_by_name(
    client: FlaskClient, org: Org
) -> None:
    body = {"portal_id": "portal-1", "source": {"credentials": {"client_id": "only-this"}}}

    response = client.post("/api/v1/integrations", json=body, headers=org.auth())

    assert response.status_code == 422
    (detail,) = response.get_json()["details"]
    assert detail["path"] == "source"
    assert "{client_id, client_secret, refresh_token}" in detail["message"]
    assert "only-this" not in response.get_data(as_text=True)


def test_a_run_after_the_key_changed_fails_with_that_message(
    client: FlaskClient,
    org: Org,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    settings: Settings,
) -> None:
    connect(client, org)
    other_key = settings.model_copy(
        update={"credential_key": SecretStr(Fernet.generate_key().decode())}
    )

    def never(_portal_id: str, _source: dict[str, Any]) -> Any:
        raise AssertionError("no client is built without the credentials")

    result = PullRunner(pg_sessions, publisher, other_key, client_factory=never).run_next()

    assert result is not None and result[1] == "failed"
    with pg_sessions() as session:
        run = session.get(SyncRun, result[0])
        assert run is not None and run.error is not None
        assert "credential key changed" in run.error


def test_postgresql_without_a_credential_key_refuses_a_source_clearly(
    org: Org,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
) -> None:
    keyless = settings.model_copy(update={"credential_key": SecretStr("")})
    client = create_app(keyless, publisher=publisher, sessions=pg_sessions).test_client()
    body = {"portal_id": "portal-1", "source": {"credentials": SECRETS}}

    response = client.post("/api/v1/integrations", json=body, headers=org.auth())

    assert response.status_code == 500
    assert response.get_json()["error"] == "credential_key_unusable"
    assert "billsync zoho key" in response.get_json()["message"]
