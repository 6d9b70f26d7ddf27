"""Schema migrations: ``billsync db upgrade`` runs Alembic with the Settings' URL.

An upgrade is all or nothing on both databases: interrupted at any statement (Ctrl-C
during the first ``billsync run``, a killed container), the database is left as it
was before, and the next start simply migrates again.

- PostgreSQL runs DDL inside transactions: the whole upgrade is one.
- SQLite could too, but Python's sqlite3 driver only opens a transaction before
  INSERT/UPDATE/DELETE, so every ``CREATE TABLE`` of a migration committed on its own.
  The upgrade takes the driver's transaction handling away for its connection and
  issues ``BEGIN IMMEDIATE`` itself (SQLAlchemy's documented pysqlite recipe), which
  also makes a second process wait for the first one's upgrade instead of racing it.

``require_current`` is what the production processes call instead of migrating: they
refuse to start on a database whose schema is not the one this code was written for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from worker.db import Base
from worker.errors import ConfigurationError

__all__ = [
    "SchemaNotCurrent",
    "SchemaUnversioned",
    "alembic_config",
    "database_revision",
    "head_revision",
    "require_current",
    "schema_is_current",
    "upgrade_schema",
]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key: concurrent upgrades (two commands starting at once) queue.
_UPGRADE_LOCK = 0x62696C6C73796E63  # "billsync"


class SchemaNotCurrent(ConfigurationError):
    """The database's schema is not the one this billsync needs (behind or ahead)."""


class SchemaAhead(SchemaNotCurrent):
    """The database was migrated by a newer billsync: waiting will not help."""


class SchemaUnversioned(ConfigurationError):
    """The database holds billsync's tables but no schema version: a migration of an
    older billsync was interrupted, and what it left cannot be told apart from data."""


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


@cache
def _scripts() -> ScriptDirectory:
    """This code's migration scripts (read once per process)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    """The revision this code's migrations end at."""
    head = _scripts().get_current_head()
    assert head is not None, "the migrations have no single head"
    return head


def database_revision(connection: Connection) -> str | None:
    """The revision recorded in the database; None for a database never migrated."""
    # Read directly: Alembic's MigrationContext logs its set-up at INFO on every call,
    # and /readyz calls this for every probe.
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    return None if found is None else str(found)


def schema_is_current(connection: Connection) -> bool:
    return database_revision(connection) == head_revision()


def require_current(engine: Engine) -> None:
    """Raise SchemaNotCurrent, saying what to do, unless the schema is at head."""
    with engine.connect() as connection:
        found = database_revision(connection)
    head = head_revision()
    if found == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    if found is None or found in {script.revision for script in _scripts().walk_revisions()}:
        have = "not migrated yet" if found is None else f"at revision {found}"
        raise SchemaNotCurrent(
            f"the database ({where}) is {have}; this billsync needs revision {head}. "
            "Run `billsync db upgrade` with the same settings first."
        )
    raise SchemaAhead(
        f"the database ({where}) is at revision {found}, which this billsync does not know "
        f"(its newest is {head}): a newer billsync migrated it. Run that version instead."
    )


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (idempotent), in one transaction."""
    config = alembic_config(engine)
    with _one_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            # A migration may rewrite a large table; the statement bound is the service's.
            connection.execute(text("SET LOCAL statement_timeout = 0"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        _heal_unversioned(connection, where=engine.url.render_as_string(hide_password=True))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def _one_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that DDL cannot escape; committed on success,
    rolled back on any exception, KeyboardInterrupt included."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        saved = driver.isolation_level
        # None: the driver neither opens nor commits transactions behind our back.
        driver.isolation_level = None
        try:
            with connection.begin():
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield connection
        finally:
            driver.isolation_level = saved


def _heal_unversioned(connection: Connection, where: str) -> None:
    """Tables without a recorded version were left by an interrupted migration of an
    older billsync (its SQLite DDL committed statement by statement). Empty, they are
    dropped and migrated again; holding rows, they are not ours to guess about."""
    if database_revision(connection) is not None:
        return
    # Only billsync's own tables: a PostgreSQL database may be shared with others.
    ours = set(Base.metadata.tables)
    tables = [t for t in inspect(connection).get_table_names() if t in ours]
    if not tables:
        return
    filled = [t for t in tables if _has_rows(connection, t)]
    if filled:
        raise SchemaUnversioned(
            f"the database ({where}) has tables ({', '.join(sorted(filled))} hold rows) but no "
            "schema version, so it cannot be migrated safely: an earlier migration was "
            "interrupted. Restore it from a backup, or point BILLSYNC_DATABASE_URL (or "
            "BILLSYNC_DATA_DIR) at an empty database."
        )
    log.warning(
        "dropping the empty tables an interrupted migration left, then migrating again",
        extra={"fields": {"tables": sorted(tables)}},
    )
    preparer = connection.dialect.identifier_preparer
    for table in _children_first(connection, tables):
        connection.exec_driver_sql(f"DROP TABLE {preparer.quote(table)}")


def _has_rows(connection: Connection, table: str) -> bool:
    quoted = connection.dialect.identifier_preparer.quote(table)
    return connection.exec_driver_sql(f"SELECT 1 FROM {quoted} LIMIT 1").first() is not None


def _children_first(connection: Connection, tables: list[str]) -> list[str]:
    """Drop order in which no table goes before one that references it."""
    inspector = inspect(connection)
    ordered = inspector.get_sorted_table_and_fkc_names()
    parents_first = [name for name, _ in ordered if name in tables]
    return list(reversed(parents_first))
