"""The status page at ``/``: in headless Chromium against the real app (PostgreSQL,
RabbitMQ, the apply consumer running) on a desktop and a phone-wide window, plus what
it shows and its access rules through the test client.

``BILLSYNC_TEST_SCREENSHOTS=/tmp/billsync-screenshots`` keeps the browser tests'
screenshots to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from selenium.webdriver import Chrome
from selenium.webdriver.common.by import By
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser import DESKTOP, PHONE, chromium, overflow, screenshot, serve
from tests.conftest import Connected, Org, make_org
from tests.events import message, project
from tests.integration.sync_harness import Sync
from tests.support import wait_until
from webhook_gateway.status_page import COOKIE, CSRF_FIELD, LOGIN_COOKIE, count_lines, utc_time
from worker.cli.runtime import ConsumerThread, build_consumer
from worker.db import DeadLetter, Project, SyncCursor, SyncError, SyncRun
from worker.messaging.dead_letters import archive
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
    dead = message(event, integration_id, f"dead-{event['data']['id']}")
    with sessions.begin() as session:
        row = archive(session, dead.model_dump_json(), headers, "projects.updated")
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
            log_in(browser, base, org.admin_token)

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


# -- a busy organization: many errors, a throttled pull, counts, dead letters ------------

REASONS = {  # reason: (module, how many records)
    "project_without_primary_customer": ("timesheets", 20),
    "related_task_missing": ("timesheets", 10),
    "missing_required_field": ("projects", 6),
}
TRACEBACK = (
    'Traceback (most recent call last):\n  File "worker/apply.py", line 1\nIntegrityError: boom'
)
INITIAL_COUNTS: dict[str, Any] = {
    "projects": {"read": 4, "emitted": 3, "invalid": 1, "deleted": 0},
    "timesheets": {
        "read": 1200,
        "emitted": 1197,
        "invalid": 3,
        "deleted": 0,
        "invalid_fields": {"owner.email": 2, "log_date": 1},
    },
    "portal": {"calls": 12, "calls_left": 0, "throttled": False, "seconds_left": 0},
}


def open_errors(sessions: sessionmaker[Session], integration_id: str) -> None:
    """36 open errors over three reasons, as the worker's refusals leave them."""
    seen = datetime(2026, 11, 24, 10, 15, tzinfo=UTC)
    with sessions.begin() as session:
        for reason, (module, records) in REASONS.items():
            for n in range(records):
                session.add(
                    SyncError(
                        integration_id=integration_id,
                        module=module,
                        source_id=f"{reason[:4]}-{n:04d}-2447529000000057232",
                        reason=reason,
                        message=f"The record cannot be synced ({reason}).",
                        resolution="Fix it in the portal; it syncs by itself then.",
                        last_seen=seen + timedelta(minutes=n),
                    )
                )


def sync_run(
    sessions: sessionmaker[Session],
    integration_id: str,
    counts: dict[str, Any],
    *,
    outcome: str = "succeeded",
) -> None:
    started = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    with sessions.begin() as session:
        session.add(
            SyncRun(
                integration_id=integration_id,
                kind="initial",
                started_at=started,
                finished_at=None if outcome == "running" else started + timedelta(minutes=5),
                heartbeat_at=started,
                outcome=outcome,
                counts=counts,
            )
        )


@pytest.fixture
def busy(
    integration: Connected, pg_sessions: sessionmaker[Session], org: Org
) -> Iterator[Connected]:
    """The integration after an initial sync, with open errors and two dead letters."""
    Sync(pg_sessions, org.id, integration.id).apply(project("P1"))
    open_errors(pg_sessions, integration.id)
    sync_run(pg_sessions, integration.id, INITIAL_COUNTS)
    with_traceback = {**ERROR_HEADERS, "x-billsync-traceback": TRACEBACK}
    dead_letter(pg_sessions, integration.id, project("P2"), with_traceback)
    dead_letter(pg_sessions, integration.id, project("P3-" + "x" * 50))
    yield integration


def log_in(browser: Chrome, base: str, token: str) -> None:
    browser.get(base + "/")
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    field.submit()
    wait_until(lambda: browser.find_elements(By.ID, "dead-letters"))


def test_on_a_desktop_the_open_errors_are_one_row_per_reason_with_its_record_count(
    app: Flask, org: Org, busy: Connected
) -> None:
    with serve(app) as base, chromium(DESKTOP) as browser:
        log_in(browser, base, org.admin_token)
        screenshot(browser, "status-1280")

        groups = browser.find_elements(By.CSS_SELECTOR, "tr.error-group")
        shown = {
            g.get_attribute("data-reason"): g.find_element(By.CSS_SELECTOR, ".records").text
            for g in groups
        }
        assert shown == {reason: str(n) for reason, (_m, n) in REASONS.items()}
        assert browser.find_element(By.CSS_SELECTOR, "a.all-errors").text.endswith("(36)")


def test_on_a_390px_phone_nothing_is_wider_than_the_screen(
    app: Flask, org: Org, busy: Connected
) -> None:
    with serve(app) as base, chromium(PHONE) as browser:
        log_in(browser, base, org.admin_token)
        screenshot(browser, "status-390")
        assert browser.execute_script("return window.innerWidth") == PHONE
        assert overflow(browser) == 0

        browser.find_element(By.CSS_SELECTOR, "tr.dead-letter a.details").click()
        wait_until(lambda: browser.find_elements(By.ID, "traceback"))
        screenshot(browser, "dead-letter-390")
        assert overflow(browser) == 0


def test_a_dead_letters_details_show_its_error_traceback_and_body_and_an_admin_deletes_it(
    app: Flask, org: Org, busy: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    with serve(app) as base, chromium(DESKTOP) as browser:
        log_in(browser, base, org.admin_token)
        row = browser.find_element(By.CSS_SELECTOR, "tr.dead-letter")
        dead_id = str(row.get_attribute("id")).removeprefix("dead-letter-")
        row.find_element(By.CSS_SELECTOR, "a.details").click()
        wait_until(lambda: browser.find_elements(By.ID, "traceback"))
        screenshot(browser, "dead-letter-1280")

        assert browser.find_element(By.ID, "error").text == "IntegrityError boom"
        assert browser.find_element(By.ID, "traceback").text == TRACEBACK
        assert '"event_id": "dead-P2"' in browser.find_element(By.ID, "body").text

        browser.find_element(By.ID, "delete").click()
        wait_until(lambda: browser.find_elements(By.ID, "notice"))
        assert browser.find_element(By.ID, "notice").text == "Deleted 1 dead letter."
        assert not browser.find_elements(By.ID, f"dead-letter-{dead_id}")
    with pg_sessions() as session:
        assert session.get(DeadLetter, int(dead_id)) is None


# -- what the page says ---------------------------------------------------------------------


def test_every_time_reads_the_same_way_in_utc() -> None:
    assert utc_time("2026-12-01T14:05:59.123456+00:00") == "2026-12-01 14:05 UTC"
    assert utc_time(datetime(2026, 12, 1, 16, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-12-01 14:05 UTC"
    )
    assert utc_time(None) == ""


def test_a_runs_counts_read_as_words_per_module_and_for_the_portal() -> None:
    assert count_lines(INITIAL_COUNTS) == [
        "projects: 4 read, 3 emitted, 1 invalid, 0 deleted",
        "timesheets: 1,200 read, 1,197 emitted,"
        " 3 invalid (owner.email × 2, log_date × 1), 0 deleted",
        "portal: 12 calls",
    ]


def test_the_sync_history_shows_no_python_dicts(
    client: FlaskClient, org: Org, busy: Connected
) -> None:
    login(client, org.viewer_token)

    html = client.get("/").get_data(as_text=True)
    assert "invalid (owner.email × 2, log_date × 1)" in html
    assert "{" not in html and "&#39;" not in html


def test_the_last_sync_and_last_seen_columns_share_one_date_format(
    client: FlaskClient, org: Org, busy: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    with pg_sessions.begin() as session:
        session.add(
            SyncCursor(
                integration_id=busy.id,
                module="projects",
                last_sync_at=datetime(2026, 11, 24, 10, 5, 30, tzinfo=UTC),
            )
        )
    login(client, org.viewer_token)

    html = client.get("/").get_data(as_text=True)
    assert "2026-11-24 10:05 UTC" in html  # the last sync
    assert "2026-11-24 10:34 UTC" in html  # the last error seen
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", html), "a raw ISO time is on the page"


def test_a_webhook_only_module_shows_when_its_last_event_was_applied(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    Sync(pg_sessions, org.id, integration.id).apply(project("P1"))
    login(client, org.viewer_token)

    html = client.get("/").get_data(as_text=True)
    assert re.search(r'data-module="projects">.*?UTC <span class="muted">\(webhook\)', html, re.S)
    assert re.search(r'data-module="tasks">.*?>never<', html, re.S)


def test_a_throttled_pull_shows_it_and_the_time_it_has_left(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    portal = {"calls": 40, "calls_left": 600, "throttled": True, "seconds_left": 720}
    sync_run(pg_sessions, integration.id, {"portal": portal}, outcome="running")
    login(client, org.viewer_token)

    html = client.get("/").get_data(as_text=True)
    assert f'id="throttled-{integration.id}"' in html
    assert "about 12 min left" in html


def test_every_record_with_an_open_error_is_listed_25_to_a_page(
    client: FlaskClient, org: Org, busy: Connected
) -> None:
    login(client, org.viewer_token)

    first = client.get(f"/integrations/{busy.id}/errors").get_data(as_text=True)
    following = re.search(r'id="errors-next" href="([^"]+)"', first)
    assert first.count('<tr class="error">') == 25 and following is not None
    second = client.get(following.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('<tr class="error">') == 11 and 'id="errors-next"' not in second


def test_another_organizations_errors_and_dead_letters_are_not_found(
    client: FlaskClient, busy: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = dead_letter(pg_sessions, busy.id, project("P9"))
    login(client, make_org(pg_sessions, "Other").admin_token)

    assert client.get(f"/integrations/{busy.id}/errors").status_code == 404
    assert client.get(f"/dead-letters/{dead_id}").status_code == 404
    assert submit(client, f"/dead-letters/{dead_id}/delete").status_code == 404


def test_a_viewer_sees_a_dead_letters_details_but_cannot_delete_it(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    login(client, org.viewer_token)

    details = client.get(f"/dead-letters/{dead_id}").get_data(as_text=True)
    assert "dead-P2" in details and 'id="delete"' not in details
    assert submit(client, f"/dead-letters/{dead_id}/delete").status_code == 403
    with pg_sessions() as session:
        assert session.get(DeadLetter, dead_id) is not None


def test_deleting_needs_this_sessions_csrf_token(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = dead_letter(pg_sessions, integration.id, project("P2"))
    login(client, org.admin_token)

    forged = client.post(
        f"/dead-letters/{dead_id}/delete", data={CSRF_FIELD: "guess"}, headers=SAME_ORIGIN
    )
    assert forged.status_code == 403
    with pg_sessions() as session:
        assert session.get(DeadLetter, dead_id) is not None


def test_dead_letters_beyond_the_first_50_are_on_the_next_page(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    for n in range(51):
        dead_letter(pg_sessions, integration.id, project(f"P{n}"))
    login(client, org.viewer_token)

    first = client.get("/").get_data(as_text=True)
    following = re.search(r'id="dead-letters-next" href="([^"]+)"', first)
    assert first.count('class="dead-letter"') == 50 and following is not None
    second = client.get(following.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('class="dead-letter"') == 1
