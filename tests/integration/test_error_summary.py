"""Resolving errors by the versions decided: the same rule on PostgreSQL (one statement
of constant text) and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.support import add_integration
from worker.db import SyncError
from worker.sync.error_summary import resolve_records

pytestmark = pytest.mark.integration

INTEGRATION = "int-1"
NOON = datetime(2026, 11, 24, 12, tzinfo=UTC)
ONE = datetime(2026, 11, 24, 13, tzinfo=UTC)
TWO = datetime(2026, 11, 24, 14, tzinfo=UTC)


@pytest.fixture
def sessions(any_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    return add_integration(any_sessions, INTEGRATION)


def _errors(sessions: sessionmaker[Session], *versions: tuple[str, datetime | None]) -> None:
    with sessions.begin() as session:
        for source_id, version in versions:
            session.add(
                SyncError(
                    integration_id=INTEGRATION,
                    module="tasks",
                    source_id=source_id,
                    reason="project_missing",
                    message="waits for its project",
                    version=version,
                )
            )


def _resolve(
    sessions: sessionmaker[Session], decided: dict[str, datetime | None], *, inclusive: bool
) -> set[str]:
    """Resolve; the source ids whose error is still open."""
    with sessions.begin() as session:
        resolve_records(session, INTEGRATION, "tasks", decided, inclusive=inclusive)
    with sessions() as session:
        return set(
            session.scalars(select(SyncError.source_id).where(SyncError.resolved.is_(False)))
        )


def test_a_written_version_resolves_the_errors_of_it_and_of_older_versions(
    sessions: sessionmaker[Session],
) -> None:
    _errors(sessions, ("T1", NOON), ("T2", ONE), ("T3", TWO))

    still_open = _resolve(sessions, {"T1": ONE, "T2": ONE, "T3": ONE}, inclusive=True)

    assert still_open == {"T3"}  # an error about a newer version stays open


def test_a_refused_version_resolves_only_the_errors_of_older_versions(
    sessions: sessionmaker[Session],
) -> None:
    _errors(sessions, ("T1", NOON), ("T2", ONE))

    still_open = _resolve(sessions, {"T1": ONE, "T2": ONE}, inclusive=False)

    assert still_open == {"T2"}


def test_an_error_without_a_version_or_a_decision_without_one_is_always_covered(
    sessions: sessionmaker[Session],
) -> None:
    _errors(sessions, ("T1", None), ("T2", TWO), ("T3", TWO))

    still_open = _resolve(sessions, {"T1": NOON, "T2": None}, inclusive=False)

    assert still_open == {"T3"}  # not decided: untouched
