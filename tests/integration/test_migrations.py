"""Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text

from worker.db import Base, migrate

pytestmark = pytest.mark.integration


@pytest.fixture(params=["postgresql", "sqlite"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database: a new SQLite file, or a new schema in the run's PostgreSQL."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    else:
        url = request.getfixturevalue("database_url")
        admin = create_engine(url)
        with admin.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS migrations_check CASCADE"))
            connection.execute(text("CREATE SCHEMA migrations_check"))
        admin.dispose()
        engine = create_engine(url, connect_args={"options": "-csearch_path=migrations_check"})
    yield engine
    engine.dispose()


def test_upgrade_to_head_matches_the_models(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    with fresh_engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    migrate.upgrade_schema(fresh_engine)
    assert "timesheets" in inspect(fresh_engine).get_table_names()
