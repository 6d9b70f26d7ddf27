"""What the benchmarks share: a throwaway PostgreSQL database on the suite's server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests import servers


@contextmanager
def temporary_database() -> Iterator[str]:
    """A new database's URL, dropped afterwards (found as the test suite finds servers)."""
    server = make_url(servers.postgres_server_url())
    name = f"billsync_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
