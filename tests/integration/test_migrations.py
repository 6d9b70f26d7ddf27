"""Alembic migrations build exactly the schema the models declare, on both databases."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from worker.db import Base, migrate

pytestmark = pytest.mark.integration


def test_upgrade_to_head_matches_the_models(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    with fresh_engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    migrate.upgrade_schema(fresh_engine)
    assert "timesheets" in inspect(fresh_engine).get_table_names()
