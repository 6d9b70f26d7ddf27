"""integration counts kept by the database

Status counted, on every call, the live rows of every module's table, the open sync
errors, the parked events and the dead letters of the integration: with a million
time logs, most of a second. `integration_counts` holds those counts as deltas that
triggers append in the transaction that changes them (see `worker.db.counts`); a
count is the sum of its deltas.

The triggers are created before the present counts are stored: on PostgreSQL,
creating a trigger locks its table against writes until this migration commits, so
no change falls between the two. On SQLite the upgrade holds the database's write
lock throughout (`BEGIN IMMEDIATE`, see `worker.db.migrate`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 11:00:00
"""

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# About one trigger call in this many folds the deltas of the integrations it touched.
FOLD_EVERY = 16


class Counted(NamedTuple):
    """How a table's rows are counted: ``counter`` and ``counted`` are SQL over a row's
    columns, prefixed with ``{row}`` (``NEW.``, ``OLD.`` or nothing)."""

    function: str  # PostgreSQL's trigger function, shared by the tables of one kind
    counter: str
    counted: str
    truncated: str  # PostgreSQL: the counters a TRUNCATE of the table drops


LIVE_ROWS = Counted(
    "billsync_count_live_rows",
    "'rows:' || {table}",
    "NOT {row}deleted",
    "counter = 'rows:' || TG_TABLE_NAME",
)
TABLES = {
    # Every module's table (``worker.sync.modules``): its live (not deleted) records.
    **{
        table: LIVE_ROWS
        for table in (
            "projects",
            "staff_users",
            "milestones",
            "tasklists",
            "tasks",
            "bugs",
            "timesheets",
        )
    },
    "sync_errors": Counted(
        "billsync_count_open_errors",
        "'open_errors:' || {row}module",
        "NOT {row}resolved",
        "starts_with(counter, 'open_errors:')",
    ),
    "parked_events": Counted(
        "billsync_count_parked_events", "'parked_events'", "TRUE", "counter = 'parked_events'"
    ),
    "dead_letters": Counted(
        "billsync_count_dead_letters", "'dead_letters'", "TRUE", "counter = 'dead_letters'"
    ),
}


def upgrade() -> None:
    op.create_table(
        "integration_counts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("integration_id", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_counts")),
    )
    op.create_index(
        "ix_integration_counts_integration",
        "integration_counts",
        ["integration_id", "counter"],
        unique=False,
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    statements = _postgresql_triggers() if postgresql else _sqlite_triggers()
    for statement in statements:
        _run(statement)
    for table, counted in TABLES.items():
        counter = counted.counter.format(table=f"'{table}'", row="")
        _run(
            "INSERT INTO integration_counts (integration_id, counter, delta) "
            f"SELECT integration_id, {counter}, count(*) FROM {table} "
            f"WHERE integration_id IS NOT NULL AND {counted.counted.format(row='')} "
            "GROUP BY 1, 2"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            for event in ("insert", "update", "delete", "truncate"):
                _run(f"DROP TRIGGER count_{table}_{event} ON {table}")
        for function in sorted({counted.function for counted in TABLES.values()}):
            _run(f"DROP FUNCTION {function}()")
        _run("DROP FUNCTION billsync_fold_counts(text[])")
    else:
        for table in TABLES:
            for event in ("insert", "delete", "update_from", "update_to"):
                _run(f"DROP TRIGGER count_{table}_{event}")
    op.drop_index("ix_integration_counts_integration", table_name="integration_counts")
    op.drop_table("integration_counts")


def _run(statement: str) -> None:
    # As written, not as a text() clause: the DDL binds no parameters, and the colons in
    # its counter names ('rows:…') are best not scanned for any.
    op.get_bind().exec_driver_sql(statement)


# -- PostgreSQL: statement-level, one delta row per integration and counter changed -------
# (OR REPLACE: functions outlive the tables of a migration that is re-run on empty tables
# left unversioned, see ``worker.db.migrate``; the triggers went with the tables.)

FOLD = """
CREATE OR REPLACE FUNCTION billsync_fold_counts(integrations text[]) RETURNS void
LANGUAGE sql AS $$
    -- Rows another transaction is folding are skipped (it puts their sum back), and
    -- rows not committed yet are not seen: whatever runs at once, no delta is lost
    -- or counted twice, and nobody waits.
    WITH folded AS (
        DELETE FROM integration_counts
        WHERE id IN (
            SELECT id FROM integration_counts
            WHERE integration_id = ANY (integrations)
            FOR UPDATE SKIP LOCKED
        )
        RETURNING integration_id, counter, delta
    )
    INSERT INTO integration_counts (integration_id, counter, delta)
    SELECT integration_id, counter, sum(delta) FROM folded
    GROUP BY integration_id, counter
    HAVING sum(delta) <> 0
$$
"""

COUNT = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched text[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM integration_counts WHERE {truncated};
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        WITH appended AS (
            INSERT INTO integration_counts (integration_id, counter, delta)
            SELECT integration_id, {counter}, count(*) FROM new_rows
            WHERE integration_id IS NOT NULL AND {counted}
            GROUP BY 1, 2
            RETURNING integration_id
        )
        SELECT array_agg(DISTINCT integration_id) INTO touched FROM appended;
    ELSIF TG_OP = 'DELETE' THEN
        WITH appended AS (
            INSERT INTO integration_counts (integration_id, counter, delta)
            SELECT integration_id, {counter}, -count(*) FROM old_rows
            WHERE integration_id IS NOT NULL AND {counted}
            GROUP BY 1, 2
            RETURNING integration_id
        )
        SELECT array_agg(DISTINCT integration_id) INTO touched FROM appended;
    ELSE
        -- Most updates change no count (a newer version of a live record): they
        -- cancel out here and append nothing.
        WITH appended AS (
            INSERT INTO integration_counts (integration_id, counter, delta)
            SELECT integration_id, counter, sum(delta) FROM (
                SELECT integration_id, {counter} AS counter, 1 AS delta
                FROM new_rows WHERE {counted}
                UNION ALL
                SELECT integration_id, {counter}, -1 FROM old_rows WHERE {counted}
            ) AS changed
            WHERE integration_id IS NOT NULL
            GROUP BY 1, 2
            HAVING sum(delta) <> 0
            RETURNING integration_id
        )
        SELECT array_agg(DISTINCT integration_id) INTO touched FROM appended;
    END IF;
    IF touched IS NOT NULL AND random() < 1.0 / {fold_every} THEN
        PERFORM billsync_fold_counts(touched);
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = (
    ("insert", "INSERT", "REFERENCING NEW TABLE AS new_rows"),
    ("update", "UPDATE", "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"),
    ("delete", "DELETE", "REFERENCING OLD TABLE AS old_rows"),
    ("truncate", "TRUNCATE", ""),
)


def _postgresql_triggers() -> list[str]:
    statements = [FOLD]
    for function in sorted({counted.function for counted in TABLES.values()}):
        counted = next(c for c in TABLES.values() if c.function == function)
        statements.append(
            COUNT.format(
                function=function,
                counter=counted.counter.format(table="TG_TABLE_NAME", row=""),
                counted=counted.counted.format(row=""),
                truncated=counted.truncated,
                fold_every=FOLD_EVERY,
            )
        )
    for table, counted in TABLES.items():
        for name, event, referencing in TRIGGERS:
            statements.append(
                f"CREATE TRIGGER count_{table}_{name} AFTER {event} ON {table} {referencing} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {counted.function}()"
            )
    return statements


# -- SQLite: row-level, one row per counter added to ----------------------------------------


def _sqlite_triggers() -> list[str]:
    statements = []
    for table, counted in TABLES.items():

        def counter(row: str, table: str = table, counted: Counted = counted) -> str:
            return counted.counter.format(table=f"'{table}'", row=row)

        def is_counted(row: str, counted: Counted = counted) -> str:
            return f"{row}integration_id IS NOT NULL AND {counted.counted.format(row=row)}"

        def add(row: str, delta: int) -> str:
            key = f"integration_id = {row}integration_id AND counter = {counter(row)}"
            return (
                "INSERT INTO integration_counts (integration_id, counter, delta) "
                f"SELECT {row}integration_id, {counter(row)}, 0 "
                f"WHERE NOT EXISTS (SELECT 1 FROM integration_counts WHERE {key}); "
                f"UPDATE integration_counts SET delta = delta + ({delta}) WHERE {key};"
            )

        # An updated row moves between counts only when whether and where it counts
        # changed (a tombstone, an error resolved, a letter's integration repaired).
        unchanged = (
            "OLD.integration_id IS NEW.integration_id AND "
            f"({is_counted('OLD.')}) = ({is_counted('NEW.')}) AND "
            f"{counter('OLD.')} IS {counter('NEW.')}"
        )
        for name, event, when, change in (
            ("insert", "INSERT", is_counted("NEW."), add("NEW.", 1)),
            ("delete", "DELETE", is_counted("OLD."), add("OLD.", -1)),
            (
                "update_from",
                "UPDATE",
                f"{is_counted('OLD.')} AND NOT ({unchanged})",
                add("OLD.", -1),
            ),
            ("update_to", "UPDATE", f"{is_counted('NEW.')} AND NOT ({unchanged})", add("NEW.", 1)),
        ):
            statements.append(
                f"CREATE TRIGGER count_{table}_{name} AFTER {event} ON {table} "
                f"WHEN {when} BEGIN {change} END"
            )
    return statements
