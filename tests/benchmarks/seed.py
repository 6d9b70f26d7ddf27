"""Stored history for the status benchmark: many time logs and open errors, fast.

Projects and tasks go through ``apply_batch`` (the real rules, in batches). Then one
time log and one refused time log are applied the same way, and copied in the
database by ``INSERT … SELECT … generate_series`` into the numbers asked for: every
column as the worker wrote it in the template row (whatever the schema is now), only
the ids, relations, dates and minutes varied. A million time logs take tens of
seconds instead of the worker's minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

from tests.benchmarks.common import Tenant
from tests.benchmarks.workload import queue_messages, seed_projects
from tests.events import timesheet
from worker.db import make_sessionmaker
from worker.sync.apply import apply_batch

__all__ = ["TASKS_PER_PROJECT", "Seeded", "seed"]

TASKS_PER_PROJECT = 10
BATCH = 500


@dataclass(frozen=True)
class Seeded:
    projects: int
    tasks: int
    time_logs: int
    errors: int


def seed(engine: Engine, tenant: Tenant, projects: int, time_logs: int, errors: int) -> Seeded:
    """``projects`` × 10 tasks applied, then ``time_logs`` and ``errors`` copied."""
    sessions = make_sessionmaker(engine)
    events = seed_projects(projects, TASKS_PER_PROJECT)
    templates = [
        timesheet("seed-template", "SP0", task_id="ST0-0", event_id="seed-log"),
        timesheet(
            "seed-error-template",
            "SP0",
            task_id="ST0-0",
            bill_status="Non Billable",
            event_id="seed-error",
        ),
    ]
    messages = queue_messages([*events, *templates], tenant.integration_id)
    for start in range(0, len(messages), BATCH):
        with sessions.begin() as session:
            apply_batch(session, messages[start : start + BATCH])

    tasks = projects * TASKS_PER_PROJECT
    per_task = -(-time_logs // tasks)  # ceiling
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        log_id = _template(connection, "timesheets", tenant.integration_id, "seed-template")
        error_id = _template(
            connection, "sync_errors", tenant.integration_id, "seed-error-template"
        )
        log = "'seed-' || t.source_id || '-' || g"
        log_date = "tpl.log_date - (g % 365)"
        minutes = "15 + (g * 7) % 240"
        columns = _columns(connection, "timesheets")
        values = _select(
            columns,
            {
                "source_id": log,
                "task_id": "t.id",
                "task_source_id": "t.source_id",
                "project_id": "t.project_id",
                "project_source_id": "t.project_source_id",
                "log_date": log_date,
                "minutes": minutes,
                "payload": "tpl.payload || jsonb_build_object('id', "
                f"{log}, 'task_id', t.source_id, 'project_id', t.project_source_id, "
                f"'log_date', ({log_date})::text, 'minutes', {minutes})",
            },
        )
        connection.execute(
            text(
                f"INSERT INTO timesheets ({_names(columns)}) SELECT {values} "
                "FROM timesheets AS tpl "
                "CROSS JOIN (SELECT id, source_id, project_id, project_source_id FROM tasks "
                "WHERE integration_id = :integration ORDER BY id) AS t "
                "CROSS JOIN generate_series(1, :per_task) AS g "
                "WHERE tpl.id = :template LIMIT :count"
            ),
            {
                "integration": tenant.integration_id,
                "per_task": per_task,
                "template": log_id,
                "count": time_logs,
            },
        )
        error = "'seed-error-' || g"
        columns = _columns(connection, "sync_errors")
        values = _select(
            columns,
            {
                "source_id": error,
                "last_payload": f"tpl.last_payload || jsonb_build_object('id', {error})",
            },
        )
        connection.execute(
            text(
                f"INSERT INTO sync_errors ({_names(columns)}) SELECT {values} "
                "FROM sync_errors AS tpl CROSS JOIN generate_series(1, :count) AS g "
                "WHERE tpl.id = :template"
            ),
            {"count": errors, "template": error_id},
        )
    with engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("ANALYZE projects, tasks, timesheets, sync_errors")
        )
    return Seeded(projects, tasks, time_logs, errors)


def _template(connection: Connection, table: str, integration_id: str, source_id: str) -> int:
    row = connection.execute(
        text(f"SELECT id FROM {table} WHERE integration_id = :i AND source_id = :s"),
        {"i": integration_id, "s": source_id},
    ).first()
    if row is None:
        raise RuntimeError(f"the seed's template {source_id} did not reach {table}")
    return int(row[0])


def _columns(connection: Connection, table: str) -> list[str]:
    rows = connection.execute(
        text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :t AND column_name <> 'id' "
            "ORDER BY ordinal_position"
        ),
        {"t": table},
    )
    return [str(r[0]) for r in rows]


def _names(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _select(columns: list[str], overrides: dict[str, str]) -> str:
    unknown = overrides.keys() - set(columns)
    if unknown:
        raise RuntimeError(f"the seed varies columns the table lacks: {sorted(unknown)}")
    return ", ".join(overrides.get(c, f'tpl."{c}"') for c in columns)
