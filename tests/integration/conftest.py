"""Fixtures for the sync-rule tests (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Org
from tests.integration.sync_harness import Sync, connect


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
