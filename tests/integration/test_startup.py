"""Starting billsync: migrations are all or nothing, production processes refuse a
database that is not migrated, and processes side by side do not trample each other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import sessionmaker

from tests.support import empty_schema_engine, wait_until
from webhook_gateway import create_app
from worker.cli.preflight import exclusive_data_dir
from worker.db import Base, migrate
from worker.messaging.publisher import Publisher
from worker.settings import Settings

pytestmark = pytest.mark.integration

BILLSYNC = [sys.executable, "-m", "worker.cli"]
# Interrupt points, spread over the whole upgrade, first and last included: SQLite's is
# the DDL the driver used to commit statement by statement; PostgreSQL's takes longer.
INTERRUPT_POINTS = {"sqlite": 8, "postgresql": 3}


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C raises, from a chosen statement of the upgrade."""


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of empty databases: new SQLite files, or new PostgreSQL schemas."""
    engines: list[Engine] = []

    def new() -> Engine:
        number = len(engines)
        if request.param == "sqlite":
            engine = create_engine(f"sqlite:///{tmp_path / f'db{number}.sqlite'}")
        else:
            url = request.getfixturevalue("database_url")
            engine = empty_schema_engine(url, f"startup_{number}")
        engines.append(engine)
        return engine

    yield new
    for engine in engines:
        engine.dispose()


def _statements_of_an_upgrade(engine: Engine) -> int:
    count = 0

    def counted(*_args: Any) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    migrate.upgrade_schema(engine)
    event.remove(engine, "before_cursor_execute", counted)
    return count


def _interrupt_at(engine: Engine, statement: int) -> None:
    """Upgrade ``engine``, raising Ctrl-C's exception just before statement number
    ``statement`` runs."""
    seen = 0

    def interrupt(*_args: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == statement:
            raise Interrupted

    event.listen(engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(Interrupted):
            migrate.upgrade_schema(engine)
    finally:
        event.remove(engine, "before_cursor_execute", interrupt)


def _migrated_to_head(engine: Engine) -> bool:
    """At head with every table of the models (test_migrations compares the columns)."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        return migrate.schema_is_current(connection) and set(Base.metadata.tables) <= tables


# -- 1. migrations are all or nothing ----------------------------------------------


def test_an_upgrade_interrupted_at_any_statement_is_completed_by_the_next_start(
    empty_database: Any,
) -> None:
    first = empty_database()
    total, wanted = _statements_of_an_upgrade(first), INTERRUPT_POINTS[first.dialect.name]
    points = sorted({1 + (total - 1) * i // (wanted - 1) for i in range(wanted)})

    healed = []
    for point in points:
        engine = empty_database()
        _interrupt_at(engine, point)
        migrate.upgrade_schema(engine)
        healed.append(_migrated_to_head(engine))

    assert healed == [True] * len(points)


def test_an_interrupted_upgrade_leaves_no_table_behind(empty_database: Any) -> None:
    engine = empty_database()
    total = _statements_of_an_upgrade(empty_database())

    _interrupt_at(engine, total // 2)

    with engine.connect() as connection:
        assert migrate.database_revision(connection) is None
        assert set(Base.metadata.tables) & set(inspect(connection).get_table_names()) == set()


def _unversioned(engine: Engine) -> None:
    """What an older billsync left when Ctrl-C stopped its first migration: the tables,
    and no recorded version."""
    migrate.upgrade_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))


def test_empty_tables_an_older_interrupted_migration_left_are_migrated_afresh(
    empty_database: Any,
) -> None:
    engine = empty_database()
    _unversioned(engine)

    migrate.upgrade_schema(engine)

    assert _migrated_to_head(engine)


def test_unversioned_tables_holding_rows_are_refused_saying_what_to_do(
    empty_database: Any,
) -> None:
    engine = empty_database()
    _unversioned(engine)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO organizations (id, name, created_at) VALUES ('o', 'Acme', :now)"),
            {"now": "2026-01-01 00:00:00"},
        )

    with pytest.raises(migrate.SchemaUnversioned, match="organizations hold rows.*backup"):
        migrate.upgrade_schema(engine)


# -- 2. production processes need a migrated database -------------------------------


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a billsync command on a data directory of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env["BILLSYNC_DATA_DIR"] = str(tmp_path / "data")
    env["BILLSYNC_METRICS_PORT"] = "0"
    return env


def billsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BILLSYNC, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", [["gateway"], ["worker"]])
def test_a_production_process_refuses_an_unmigrated_database_naming_db_upgrade(
    embedded_env: dict[str, str], command: list[str]
) -> None:
    args = [*command, "--port", str(_free_port())] if command == ["gateway"] else command

    started = billsync(embedded_env, *args)

    assert started.returncode != 0
    assert "not migrated yet" in started.stderr
    assert "billsync db upgrade" in started.stderr
    assert "Traceback" not in started.stderr


@pytest.fixture
def database_env(embedded_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The embedded environment with its database file named, to look into it."""
    return {**embedded_env, "BILLSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'wait.sqlite'}"}


def test_db_wait_gives_up_after_its_timeout_naming_what_it_waited_for(
    database_env: dict[str, str],
) -> None:
    waited = billsync(database_env, "db", "wait", "--timeout", "0")

    assert waited.returncode == 1
    assert "gave up after 0 s" in waited.stderr
    assert "not migrated yet" in waited.stderr


def test_db_wait_returns_once_another_process_migrated_the_database(
    database_env: dict[str, str],
) -> None:
    with subprocess.Popen(
        [*BILLSYNC, "db", "wait", "--timeout", "120", "--interval", "0.1"],
        env=database_env,
        stderr=subprocess.PIPE,
        text=True,
    ) as waiting:
        try:
            assert waiting.stderr is not None
            assert "waiting for the database" in waiting.stderr.readline()

            assert billsync(database_env, "db", "upgrade").returncode == 0

            assert waiting.wait(timeout=60) == 0
            assert "schema current" in waiting.stderr.read()
        finally:
            waiting.kill()


def test_db_wait_fails_at_once_on_a_database_a_newer_billsync_migrated(
    database_env: dict[str, str],
) -> None:
    assert billsync(database_env, "db", "upgrade").returncode == 0
    engine = create_engine(database_env["BILLSYNC_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()

    waited = billsync(database_env, "db", "wait", "--timeout", "600")

    assert waited.returncode == 1
    assert "newer billsync migrated it" in waited.stderr


def test_readyz_is_503_naming_the_schema_on_an_unmigrated_database(
    settings: Settings, publisher: Publisher, tmp_path: Path
) -> None:
    unmigrated = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    app = create_app(settings, publisher=publisher, sessions=sessionmaker(unmigrated))

    response = app.test_client().get("/readyz")
    unmigrated.dispose()

    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": True, "schema": False, "broker": True}


# -- 12. processes side by side -------------------------------------------------------


def test_a_second_billsync_run_on_one_data_directory_is_refused_naming_the_holder(
    embedded_env: dict[str, str],
) -> None:
    data_dir = Path(embedded_env["BILLSYNC_DATA_DIR"])
    with exclusive_data_dir(data_dir):  # what the first `billsync run` holds
        second = billsync(embedded_env, "run", "--port", str(_free_port()))

    assert second.returncode != 0
    assert f"(pid {os.getpid()})" in second.stderr and str(data_dir) in second.stderr
    assert not (data_dir / "billsync.sqlite").exists()  # refused before migrating


@contextmanager
def _listening() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.parametrize("command", ["run", "gateway"])
def test_a_busy_port_is_refused_before_the_database_is_touched(
    embedded_env: dict[str, str], command: str
) -> None:
    with _listening() as port:
        started = billsync(embedded_env, command, "--port", str(port))

    assert started.returncode != 0
    assert f"127.0.0.1:{port}" in started.stderr and "BILLSYNC_PORT" in started.stderr
    assert not (Path(embedded_env["BILLSYNC_DATA_DIR"]) / "billsync.sqlite").exists()


def test_a_worker_whose_metrics_port_is_busy_is_refused_naming_the_setting(
    embedded_env: dict[str, str],
) -> None:
    with _listening() as port:
        started = billsync({**embedded_env, "BILLSYNC_METRICS_PORT": str(port)}, "worker")

    assert started.returncode != 0
    assert f"127.0.0.1:{port}" in started.stderr and "BILLSYNC_METRICS_PORT" in started.stderr


def test_a_gateway_leaves_another_gateways_control_socket_alone(
    embedded_env: dict[str, str], tmp_path: Path
) -> None:
    runtime_dir = tmp_path / "runtime"  # gunicorn's one control socket per user is here
    runtime_dir.mkdir()
    env = {**embedded_env, "XDG_RUNTIME_DIR": str(runtime_dir), "HOME": str(tmp_path)}
    assert billsync(env, "db", "upgrade").returncode == 0
    port = _free_port()
    with socket.socket(socket.AF_UNIX) as other:  # the socket of a gateway already running
        other.bind(str(runtime_dir / "gunicorn.ctl"))
        gateway = subprocess.Popen(
            [*BILLSYNC, "gateway", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _ready(port), timeout=30)
        finally:
            gateway.terminate()  # a gateway that took the path unlinks it on its way out
            gateway.wait(timeout=30)

        assert (runtime_dir / "gunicorn.ctl").is_socket()


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
