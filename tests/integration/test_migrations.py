"""Alembic migrations build exactly the schema the models declare, on both databases,
and the ledger's partitioning (0013) keeps a populated ledger whole both ways."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text

from worker.db import Base, ProcessedEvent, include_in_autogenerate, migrate, utcnow
from worker.db.partitions import week_start

pytestmark = pytest.mark.integration


def test_upgrade_to_head_matches_the_models(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    with fresh_engine.connect() as connection:
        # As `alembic revision --autogenerate` compares: not the ledger's partitions.
        context = MigrationContext.configure(
            connection, opts={"include_name": include_in_autogenerate}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(fresh_engine: Engine) -> None:
    migrate.upgrade_schema(fresh_engine)
    migrate.upgrade_schema(fresh_engine)
    assert "timesheets" in inspect(fresh_engine).get_table_names()


def _downgrade(engine: Engine, revision: str) -> None:
    config = migrate.alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _ledger(engine: Engine) -> set[tuple[str, str, datetime]]:
    with engine.connect() as connection:
        found = connection.execute(
            select(
                ProcessedEvent.integration_id, ProcessedEvent.event_id, ProcessedEvent.processed_at
            )
        )
        return {(i, e, at) for i, e, at in found}


def test_the_ledger_migration_partitions_a_populated_ledger_and_downgrades_it_back(
    fresh_engine: Engine,
) -> None:
    migrate.upgrade_schema(fresh_engine, "0012")
    now = utcnow()
    rows = {("int-1", f"{days}-days-ago", now - timedelta(days=days)) for days in (400, 30, 0)}
    with fresh_engine.begin() as connection:
        connection.execute(
            insert(ProcessedEvent),
            [{"integration_id": i, "event_id": e, "processed_at": at} for i, e, at in rows],
        )
    postgresql = fresh_engine.dialect.name == "postgresql"

    migrate.upgrade_schema(fresh_engine, "0013")
    assert _ledger(fresh_engine) == rows
    if postgresql:
        with fresh_engine.connect() as connection:
            where = dict(
                connection.execute(
                    text("SELECT event_id, tableoid::regclass::text FROM processed_events")
                ).all()
            )
        assert where["400-days-ago"].startswith("processed_events_before_")  # dropped whole
        assert where["30-days-ago"].startswith("processed_events_p")
        assert where["0-days-ago"] == f"processed_events_p{week_start(now):%Y%m%d}"

    _downgrade(fresh_engine, "0012")
    assert _ledger(fresh_engine) == rows
    assert inspect(fresh_engine).get_pk_constraint("processed_events")["constrained_columns"] == [
        "integration_id",
        "event_id",
    ]
    if postgresql:
        assert "processed_events_default" not in inspect(fresh_engine).get_table_names()
