"""Security rules through the real app (PostgreSQL, RabbitMQ): where pull credentials may
go, webhook secrets at rest, token revocation (API and CLI), the status page's session,
CSRF and origin checks, and the headers every answer carries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import CREDENTIAL_KEY, Connected, Org, make_org
from tests.events import project
from tests.integration.test_status_page import (
    SAME_ORIGIN,
    dead_letter,
    login,
    page_csrf,
    submit,
)
from tests.support import send_signed
from webhook_gateway.security import SECURITY_HEADERS
from webhook_gateway.status_page import COOKIE, CSRF_FIELD
from worker.db import DeadLetter, Integration, IntegrationSecret, StatusSession
from worker.db.base import utcnow
from worker.integrations.credential_box import is_sealed, open_secret, pull_source
from worker.settings import Settings

EVIL = {"Origin": "https://evil.example"}


def secret_rows(sessions: sessionmaker[Session], integration_id: str) -> list[str]:
    with sessions() as session:
        return list(
            session.scalars(
                select(IntegrationSecret.secret).where(
                    IntegrationSecret.integration_id == integration_id
                )
            )
        )


def store_in_clear(sessions: sessionmaker[Session], integration_id: str, secret: str) -> None:
    """The row as a version before secrets were encrypted left it."""
    with sessions.begin() as session:
        for row in session.scalars(
            select(IntegrationSecret).where(IntegrationSecret.integration_id == integration_id)
        ):
            row.secret = secret


def billsync(
    settings: Settings, *args: str, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The CLI, in its own process, on the test database (configured as an operator would)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")},
        "BILLSYNC_DATABASE_URL": settings.database_url,
        "BILLSYNC_BROKER_URL": settings.broker_url,
        "BILLSYNC_DATA_DIR": str(settings.data_dir),
        "BILLSYNC_CREDENTIAL_KEY": key or CREDENTIAL_KEY,
    }
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# -- a pull source may send credentials to Zoho (and the allowed hosts) only -----------------


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ({"base_url": "http://169.254.169.254/latest"}, "source.base_url"),
        ({"base_url": "https://internal.example"}, "source.base_url"),
        (
            {
                "dc": "eu",
                "credentials": {
                    "client_id": "1000.ID",
                    "client_secret": "s",
                    "refresh_token": "1000.r",
                    "accounts_url": "https://evil.example",
                },
            },
            "source.credentials.accounts_url",
        ),
    ],
)
def test_a_source_naming_another_host_is_refused_with_422_naming_the_setting(
    client: FlaskClient, org: Org, source: dict[str, Any], path: str
) -> None:
    body = {"portal_id": "portal-1", "source": {"credentials": {"access_token": "t"}, **source}}

    response = client.post("/api/v1/integrations", json=body, headers=org.auth())

    assert response.status_code == 422
    answer = response.get_json()
    assert answer["error"] == "portal_host_not_allowed"
    assert "BILLSYNC_PORTAL_ALLOWED_HOSTS" in answer["message"]
    assert [d["path"] for d in answer["details"]] == [path]
    assert client.get("/api/v1/integrations", headers=org.auth()).get_json()["items"] == []


def test_a_changed_source_is_held_to_the_same_hosts(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session], settings: Settings
) -> None:
    created = client.post(
        "/api/v1/integrations",
        json={"portal_id": "portal-1", "source": {"credentials": {"access_token": "t"}}},
        headers=org.auth(),
    ).get_json()

    response = client.patch(
        f"/api/v1/integrations/{created['id']}",
        json={"source": {"base_url": "http://10.0.0.7", "credentials": {"access_token": "t"}}},
        headers=org.auth(),
    )

    assert response.status_code == 422
    with pg_sessions() as session:
        integration = session.get(Integration, created["id"])
        assert integration is not None
        assert pull_source(integration.source, settings) == {
            "base_url": None,
            "dc": "com",
            "credentials": {"access_token": "t"},
        }


# -- webhook signing secrets at rest ---------------------------------------------------------


def test_the_signing_secret_is_stored_encrypted_and_webhooks_still_verify(
    client: FlaskClient, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    (stored,) = secret_rows(pg_sessions, integration.id)

    assert is_sealed(stored) and integration.secret not in stored
    send_signed(client, integration, project(event_id="e-sealed"))


def test_a_secret_stored_in_clear_still_verifies_and_a_rotation_seals_it(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    store_in_clear(pg_sessions, integration.id, integration.secret)
    send_signed(client, integration, project(event_id="e-legacy"))

    rotated = client.post(
        f"/api/v1/integrations/{integration.id}/secrets/rotate", headers=org.auth()
    )

    assert rotated.status_code == 201
    assert all(is_sealed(row) for row in secret_rows(pg_sessions, integration.id))
    send_signed(client, integration, project(event_id="e-old-secret-in-overlap"))
    new = Connected(integration.id, rotated.get_json()["webhook_secret"])
    send_signed(client, new, project(event_id="e-new-secret"))


def test_keys_rotate_reseals_everything_with_the_new_key_and_seals_what_was_in_clear(
    client: FlaskClient,
    org: Org,
    integration: Connected,
    pg_sessions: sessionmaker[Session],
    settings: Settings,
) -> None:
    other = make_org(pg_sessions, "Other")
    pulled = client.post(
        "/api/v1/integrations",
        json={"portal_id": "p-2", "source": {"credentials": {"access_token": "the-token"}}},
        headers=other.auth(),
    ).get_json()
    store_in_clear(pg_sessions, integration.id, integration.secret)
    new_key = Fernet.generate_key().decode()

    result = billsync(settings, "keys", "rotate", key=f"{new_key},{CREDENTIAL_KEY}")

    assert lines(result) == [
        {"sources_resealed": 1, "sources_sealed": 0, "secrets_resealed": 1, "secrets_sealed": 1}
    ]
    only_new = settings.model_copy(update={"credential_key": SecretStr(new_key)})
    (stored,) = secret_rows(pg_sessions, integration.id)
    assert open_secret(stored, only_new) == integration.secret
    with pg_sessions() as session:
        source = session.get(Integration, pulled["id"])
        assert source is not None
        assert pull_source(source.source, only_new)["credentials"] == {  # type: ignore[index]
            "access_token": "the-token"
        }


# -- tokens: list, create, revoke ------------------------------------------------------------


def test_an_admin_creates_lists_and_revokes_tokens_and_a_revoked_token_is_refused_at_once(
    client: FlaskClient, org: Org
) -> None:
    created = client.post(
        "/api/v1/tokens", json={"role": "viewer", "name": "dashboard"}, headers=org.auth()
    )
    assert created.status_code == 201
    issued = created.get_json()
    assert issued["token"].startswith("bst_") and issued["revoked_at"] is None
    viewer = {"Authorization": f"Bearer {issued['token']}"}
    assert client.get("/api/v1/projects", headers=viewer).status_code == 200

    listed = client.get("/api/v1/tokens", headers=org.auth()).get_json()["items"]
    assert [(t["name"], t["role"]) for t in listed] == [
        (None, "admin"),
        (None, "viewer"),
        ("dashboard", "viewer"),
    ]
    assert all("token" not in t and "token_hash" not in t for t in listed)
    (mine,) = [t for t in listed if t["name"] == "dashboard"]
    assert mine["last_used_at"] is not None

    revoked = client.delete(f"/api/v1/tokens/{issued['id']}", headers=org.auth())

    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert client.get("/api/v1/projects", headers=viewer).status_code == 401


def test_tokens_are_for_admins_and_scoped_to_the_organization(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    other = make_org(pg_sessions, "Other")
    listed = client.get("/api/v1/tokens", headers=other.auth()).get_json()["items"]
    other_ids = [t["id"] for t in listed]

    assert client.get("/api/v1/tokens", headers=org.auth("viewer")).status_code == 403
    assert client.post("/api/v1/tokens", json={}, headers=org.auth("viewer")).status_code == 403
    assert client.delete(f"/api/v1/tokens/{other_ids[0]}", headers=org.auth()).status_code == 404
    assert client.get("/api/v1/projects", headers=other.auth()).status_code == 200


def test_an_admin_revokes_its_own_token_only_when_it_says_so(client: FlaskClient, org: Org) -> None:
    tokens = client.get("/api/v1/tokens", headers=org.auth()).get_json()["items"]
    (own,) = [t["id"] for t in tokens if t["role"] == "admin"]

    refused = client.delete(f"/api/v1/tokens/{own}", headers=org.auth())
    assert refused.status_code == 409 and refused.get_json()["error"] == "revoking_own_token"
    assert client.get("/api/v1/tokens", headers=org.auth()).status_code == 200

    done = client.delete(f"/api/v1/tokens/{own}?self=true", headers=org.auth())
    assert done.status_code == 200
    assert client.get("/api/v1/tokens", headers=org.auth()).status_code == 401


def test_the_cli_creates_lists_and_revokes_tokens(
    client: FlaskClient, org: Org, settings: Settings
) -> None:
    (created,) = lines(
        billsync(settings, "token", "create", "--org", org.id, "--role", "admin", "--name", "ci")
    )
    auth = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/v1/tokens", headers=auth).status_code == 200

    listed = lines(billsync(settings, "token", "list", "--org", org.id))
    assert [(t["name"], t["role"], t["revoked_at"]) for t in listed][-1] == ("ci", "admin", None)
    assert listed[-1]["last_used_at"] is not None
    assert all("token" not in t for t in listed)

    (revoked,) = lines(billsync(settings, "token", "revoke", created["id"]))
    assert revoked["revoked_at"] is not None
    assert client.get("/api/v1/tokens", headers=auth).status_code == 401
    unknown = billsync(settings, "token", "revoke", "no-such-token")
    assert unknown.returncode != 0 and "no token no-such-token" in unknown.stderr


# -- the status page: session, CSRF, origin, headers -----------------------------------------


def test_the_cookie_is_a_session_id_stored_only_hashed(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    login(client, org.admin_token)

    cookie = client.get_cookie(COOKIE)
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert org.admin_token not in cookie.value
    with pg_sessions() as session:
        (row,) = session.scalars(select(StatusSession))
        assert row.id_hash != cookie.value


def test_a_cross_origin_post_carrying_the_cookie_is_refused(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    login(client, org.admin_token)
    token = page_csrf(client)  # even with the token, should another site ever learn it

    for headers in (EVIL, {"Referer": "https://evil.example/page"}, {}):
        refused = client.post(
            f"/dead-letters/{dead_id}/replay", data={CSRF_FIELD: token}, headers=headers
        )
        assert refused.status_code == 403, headers
    with pg_sessions() as session:
        assert session.get(DeadLetter, dead_id) is not None


def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    login(client, org.admin_token)

    assert client.post("/dead-letters/replay", headers=SAME_ORIGIN).status_code == 403
    wrong = {CSRF_FIELD: "0" * 64}
    assert client.post("/dead-letters/replay", data=wrong, headers=SAME_ORIGIN).status_code == 403
    assert client.post("/logout", headers=SAME_ORIGIN).status_code == 403
    with pg_sessions() as session:
        assert session.get(DeadLetter, dead_id) is not None
    same_site_referer = {"Referer": "http://localhost/?module=projects"}
    done = client.post(
        "/dead-letters/replay", data={CSRF_FIELD: page_csrf(client)}, headers=same_site_referer
    )
    assert done.status_code == 303


def test_the_login_form_needs_its_own_csrf_token_and_this_origin(
    client: FlaskClient, org: Org
) -> None:
    client.get("/")

    no_token = client.post("/login", data={"token": org.admin_token}, headers=SAME_ORIGIN)
    cross = client.post("/login", data={"token": org.admin_token}, headers=EVIL)

    assert no_token.status_code == 403 and cross.status_code == 403
    assert client.get_cookie(COOKIE) is None


def test_logout_ends_the_session_on_the_server(client: FlaskClient, org: Org) -> None:
    login(client, org.admin_token)
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    session_id = cookie.value

    assert submit(client, "/logout").status_code == 303

    client.set_cookie(COOKIE, session_id)  # a copy of the cookie taken before the logout
    assert 'name="token"' in client.get("/").get_data(as_text=True)


def test_revoking_the_token_ends_its_status_page_sessions_at_once(
    client: FlaskClient, org: Org, integration: Connected
) -> None:
    login(client, org.viewer_token)
    assert integration.id in client.get("/").get_data(as_text=True)
    tokens = client.get("/api/v1/tokens", headers=org.auth()).get_json()["items"]
    (viewer_id,) = [t["id"] for t in tokens if t["role"] == "viewer"]

    client.delete(f"/api/v1/tokens/{viewer_id}", headers=org.auth())

    page = client.get("/").get_data(as_text=True)
    assert integration.id not in page and 'name="token"' in page


def test_an_expired_session_is_the_login_form(
    client: FlaskClient, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    login(client, org.admin_token)
    with pg_sessions.begin() as session:
        for row in session.scalars(select(StatusSession)):
            row.expires_at = utcnow() - timedelta(seconds=1)

    assert 'name="token"' in client.get("/").get_data(as_text=True)


@pytest.mark.parametrize("path", ["/", "/status.css", "/api/v1/projects", "/healthz"])
def test_every_answer_carries_the_security_headers(
    client: FlaskClient, org: Org, path: str
) -> None:
    login(client, org.admin_token)

    response = client.get(path, headers=org.auth())

    assert response.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_the_page_has_no_inline_script_or_style(client: FlaskClient, org: Org) -> None:
    login(client, org.admin_token)

    html = client.get("/").get_data(as_text=True)

    assert "<script" not in html and "<style" not in html and "style=" not in html
    assert client.get("/").headers["Cache-Control"] == "no-store"
