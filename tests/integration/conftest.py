"""Fixtures for the sync-rule tests (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org
from tests.fake_portal import FakePortal
from tests.integration.sync_harness import Sync, connect
from tests.support import empty_schema_engine, running
from worker.cli.runtime import build_consumer
from worker.settings import Settings


@pytest.fixture
def connect_with(pg_sessions: sessionmaker[Session], org: Org) -> Callable[..., Sync]:
    """Connect the organization's portal with the given integration settings."""
    return lambda **settings: connect(pg_sessions, org.id, **settings)


@pytest.fixture
def sync(connect_with: Callable[..., Any]) -> Sync:
    """An integration with the timesheet module, all time unbilled, overwrite preference."""
    connected: Sync = connect_with()
    return connected


@pytest.fixture
def make_second_org(pg_sessions: sessionmaker[Session]) -> Callable[..., Sync]:
    """Connect a portal for a second organization in the same database."""
    from tests.conftest import make_org

    def connect_second(**settings: Any) -> Sync:
        other = make_org(pg_sessions, "Second")
        return connect(pg_sessions, other.id, **settings)

    return connect_second


@pytest.fixture
def worker(settings: Settings, pg_sessions: sessionmaker[Session]) -> Iterator[None]:
    """The apply consumer running in the background, as `billsync worker` runs it."""
    with running(build_consumer(settings, pg_sessions)):
        yield


@pytest.fixture
def portal() -> FakePortal:
    """A small realistic portal: 4 projects with clients, one without."""
    portal = FakePortal()
    portal.seed(projects=4, tasks_per_project=3, logs_per_task=2, users=3, without_client=1)
    return portal


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a new SQLite file, or a schema of the test module's own in
    the run's PostgreSQL."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    else:
        schema = f"{request.module.__name__.rsplit('.', 1)[-1]}_check"
        engine = empty_schema_engine(request.getfixturevalue("database_url"), schema)
    yield engine
    engine.dispose()
