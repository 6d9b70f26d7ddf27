"""Lists have one shape, ``{"items", "next_cursor"}`` with ``limit`` and ``cursor``, and
the ids they page by are never handed out twice."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Connected, Org
from tests.events import task, timesheet
from tests.integration.sync_harness import Sync
from worker.messaging.dead_letters import DeadLetterFilter, archive, delete_matching

HEADERS = {"x-billsync-error-class": "RuntimeError", "x-billsync-attempts": 5}


def refuse_five(pg_sessions: sessionmaker[Session], org: Org, integration: Connected) -> None:
    """Three tasks and two time logs refused: their project was never synced."""
    Sync(pg_sessions, org.id, integration.id).apply(
        task("T1"), task("T2"), task("T3"), timesheet("L1", pid="P9"), timesheet("L2", pid="P9")
    )


def pages(client: FlaskClient, org: Org, path: str) -> list[dict[str, Any]]:
    """Every page of a list, following ``next_cursor`` to the end."""
    answers, cursor = [], None
    while True:
        url = f"{path}&cursor={cursor}" if cursor else path
        answer = client.get(url, headers=org.auth("viewer"))
        assert answer.status_code == 200, answer.get_json()
        answers.append(answer.get_json())
        cursor = answers[-1]["next_cursor"]
        if cursor is None:
            return answers


def test_the_error_summary_answers_items_and_a_cursor_like_every_list(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    refuse_five(pg_sessions, org, integration)

    answers = pages(client, org, f"/api/v1/integrations/{integration.id}/errors?limit=2")

    assert [sorted(a) for a in answers] == [["by_module", "items", "next_cursor"]] * 3
    assert [len(a["items"]) for a in answers] == [2, 2, 1]
    ids = [e["id"] for a in answers for e in a["items"]]
    assert ids == sorted(set(ids))  # in id order, nothing twice, nothing skipped
    assert sorted(e["source_id"] for a in answers for e in a["items"]) == [
        "L1",
        "L2",
        "T1",
        "T2",
        "T3",
    ]


def test_the_error_summary_counts_every_match_per_module_on_each_page(
    client: FlaskClient, org: Org, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    refuse_five(pg_sessions, org, integration)

    first = client.get(
        f"/api/v1/integrations/{integration.id}/errors?limit=1", headers=org.auth("viewer")
    ).get_json()

    assert first["by_module"] == {"tasks": 3, "timesheets": 2}


def test_the_error_summary_refuses_a_limit_or_cursor_that_is_not_one(
    client: FlaskClient, org: Org, integration: Connected
) -> None:
    path = f"/api/v1/integrations/{integration.id}/errors"
    for query in ("limit=0", "limit=501", "limit=x", "cursor=-1", "cursor=²"):
        answer = client.get(f"{path}?{query}", headers=org.auth("viewer"))
        assert (query, answer.status_code) == (query, 422)


def test_a_deleted_dead_letters_id_is_never_given_again_on_sqlite(
    sqlite_sessions: sessionmaker[Session],
) -> None:
    with sqlite_sessions.begin() as session:
        archive(session, "first", HEADERS, "projects.updated")
        newest = archive(session, "second", HEADERS, "projects.updated").id
    with sqlite_sessions.begin() as session:
        delete_matching(session, DeadLetterFilter(ids=(newest,)))

    with sqlite_sessions.begin() as session:
        next_id = archive(session, "third", HEADERS, "projects.updated").id

    assert next_id > newest
