"""The status page at ``/``: in headless Chromium against the real app (PostgreSQL,
RabbitMQ, the apply consumer running), plus its access rules through the test client."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from selenium.webdriver.common.by import By
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage, event_adapter
from tests.browser import chromium, serve
from tests.conftest import Connected, Org, make_org
from tests.integration.sync_harness import Sync
from tests.portal import project
from tests.support import wait_until
from webhook_gateway.status_page import COOKIE, CSRF_FIELD, LOGIN_COOKIE
from worker.db import DeadLetter, Project
from worker.dead_letters import archive
from worker.runtime import ConsumerThread, build_consumer
from worker.settings import Settings

ERROR_HEADERS: dict[str, Any] = {
    "x-billsync-error-class": "IntegrityError",
    "x-billsync-error-message": "boom",
    "x-billsync-attempts": 5,
}


def dead_letter(
    sessions: sessionmaker[Session],
    integration_id: str,
    event: dict[str, Any],
    headers: dict[str, Any] = ERROR_HEADERS,
) -> int:
    """A dead letter of ``event``, as the worker would have left it; its id."""
    message = QueueMessage(
        event_id=f"dead-{event['data']['id']}",
        integration_id=integration_id,
        event=event_adapter.validate_python(event),
    )
    with sessions.begin() as session:
        row = archive(session, message.model_dump_json(), headers, "projects.updated")
        session.flush()
        return row.id


def projects(sessions: sessionmaker[Session], integration_id: str) -> set[str]:
    with sessions() as session:
        return set(
            session.scalars(
                select(Project.source_id).where(Project.integration_id == integration_id)
            )
        )


# The test client's requests go to http://localhost: a browser on the page sends this Origin.
SAME_ORIGIN = {"Origin": "http://localhost"}


def try_login(client: FlaskClient, token: str) -> Any:
    """Post the login form as a browser on the login page would."""
    client.get("/")  # the login form sets its CSRF cookie
    cookie = client.get_cookie(LOGIN_COOKIE)
    assert cookie is not None
    return client.post(
        "/login", data={"token": token, CSRF_FIELD: cookie.value}, headers=SAME_ORIGIN
    )


def login(client: FlaskClient, token: str) -> None:
    response = try_login(client, token)
    assert response.status_code == 303, response.get_data(as_text=True)


def page_csrf(client: FlaskClient) -> str:
    """The CSRF token the logged-in page puts in its forms."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def submit(client: FlaskClient, path: str, **form: str) -> Any:
    """Post one of the page's forms as the browser would: same origin, with its token."""
    data = {CSRF_FIELD: page_csrf(client), **form}
    return client.post(path, data=data, headers=SAME_ORIGIN)


# -- in the browser -----------------------------------------------------------------------


def test_the_page_shows_the_integration_and_a_replay_applies_the_dead_letter(
    app: Flask,
    org: Org,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
) -> None:
    Sync(pg_sessions, org.id, integration.id).apply(project("P1"))
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    consumer = ConsumerThread(build_consumer(settings, pg_sessions))
    consumer.start()
    try:
        with serve(app) as base, chromium() as browser:
            browser.get(base + "/")
            field = browser.find_element(By.ID, "token")
            field.send_keys(org.admin_token)
            field.submit()
            wait_until(lambda: browser.find_elements(By.ID, f"integration-{integration.id}"))

            cookie = browser.get_cookie(COOKIE)
            assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert cookie["value"] != org.admin_token  # a session id, never the token
            panel = browser.find_element(By.ID, f"integration-{integration.id}")
            assert panel.find_element(By.CSS_SELECTOR, ".badge").text == "Active"
            assert synced(panel, "projects") == "1"
            row = browser.find_element(By.ID, f"dead-letter-{dead_id}")
            assert "IntegrityError" in row.text and "dead-P2" in row.text

            row.find_element(By.CSS_SELECTOR, "button.replay").click()
            wait_until(lambda: browser.find_elements(By.ID, "notice"))
            assert browser.find_element(By.ID, "notice").text == "Replayed 1 dead letter."
            assert browser.find_elements(By.CSS_SELECTOR, "tr.dead-letter") == []
            assert browser.find_elements(By.ID, "no-dead-letters")

            wait_until(lambda: "P2" in projects(pg_sessions, integration.id), timeout=20)
            browser.find_element(By.ID, "refresh").click()
            wait_until(lambda: not browser.find_elements(By.ID, "notice"))
            panel = browser.find_element(By.ID, f"integration-{integration.id}")
            assert synced(panel, "projects") == "2"
            assert browser.find_elements(By.CSS_SELECTOR, "tr.dead-letter") == []
    finally:
        consumer.stop()


def synced(panel: Any, module: str) -> str:
    cell = panel.find_element(By.CSS_SELECTOR, f'tr[data-module="{module}"] td.synced')
    text: str = cell.text
    return text


# -- access rules ---------------------------------------------------------------------------


def test_without_a_valid_token_the_page_is_the_login_form(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'name="token"' in page.get_data(as_text=True)
    assert integration.id not in page.get_data(as_text=True)

    wrong = try_login(client, "bst_not-a-token")
    assert wrong.status_code == 401
    assert "Unknown or revoked token" in wrong.get_data(as_text=True)

    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    assert client.post(f"/dead-letters/{dead_id}/replay").status_code == 401
    assert client.post("/dead-letters/replay").status_code == 401

    login(client, org.admin_token)
    assert integration.id in client.get("/").get_data(as_text=True)
    assert submit(client, "/logout").status_code == 303
    assert 'name="token"' in client.get("/").get_data(as_text=True)


def test_a_viewer_sees_escaped_dead_letters_with_a_filter_and_no_replay_button(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    hostile = {**ERROR_HEADERS, "x-billsync-error-message": "<script>alert(1)</script>"}
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"), hostile)
    login(client, org.viewer_token)

    html = client.get("/").get_data(as_text=True)
    assert f'id="dead-letter-{dead_id}"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "Replay" not in html
    assert submit(client, f"/dead-letters/{dead_id}/replay").status_code == 403
    assert submit(client, "/dead-letters/replay").status_code == 403

    filtered = client.get("/?module=tasks").get_data(as_text=True)
    assert f'id="dead-letter-{dead_id}"' not in filtered
    assert f'id="dead-letter-{dead_id}"' in client.get("/?error_class=IntegrityError").get_data(
        as_text=True
    )
    assert "<script>" not in client.get("/?done=<script>x</script>").get_data(as_text=True)


def test_an_admin_cannot_replay_another_organizations_dead_letter(
    client: FlaskClient, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    other = make_org(pg_sessions, "Other")
    login(client, other.admin_token)

    assert f'id="dead-letter-{dead_id}"' not in client.get("/").get_data(as_text=True)
    assert submit(client, f"/dead-letters/{dead_id}/replay").status_code == 404
    replayed = submit(client, "/dead-letters/replay")
    assert replayed.status_code == 303 and "done=replayed+0" in replayed.headers["Location"]
    with pg_sessions() as session:
        assert session.scalar(select(func.count()).select_from(DeadLetter)) == 1
