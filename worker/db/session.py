"""Engine and sessionmaker built from Settings; the caller owns every session.

PostgreSQL connections are bounded so that a vanished network path or a stuck peer
never blocks a worker for long (the ``BILLSYNC_DB_*`` settings):

- libpq ``connect_timeout``, and TCP keepalives plus ``tcp_user_timeout`` on the
  client, so a half-open connection is noticed in about a minute instead of the
  kernel's two hours;
- per session on the server: ``lock_timeout`` (a transaction waiting for rows another
  one holds gives up and is retried), ``statement_timeout``,
  ``idle_in_transaction_session_timeout`` (the server ends a session whose client
  vanished mid-transaction, which releases its row locks) and the server's own TCP
  keepalives.

``is_unavailable`` tells such infrastructure failures apart from failures of the
work itself; ``database_reachable`` is the cheap probe the consumer retries against.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from worker.errors import DatabaseContention, DatabaseUnavailable
from worker.settings import Settings

__all__ = [
    "database_reachable",
    "is_contention",
    "is_unavailable",
    "make_engine",
    "make_sessionmaker",
]

# SQLSTATEs of failures that say nothing about the statement's data: connection
# exceptions (08…), insufficient resources (53…), operator intervention such as a
# shutdown or a cancelled statement (57…), lock waits that timed out, deadlocks and
# serialization failures (retrying the transaction is the documented answer), and
# the server ending an idle transaction.
_TRANSIENT_CLASSES = ("08", "53", "57")
_TRANSIENT_STATES = frozenset({"55P03", "40001", "40P01", "25P03"})


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    """Create the engine; SQLite gets WAL and a busy timeout so threads can share it."""
    settings.ensure_data_dir()
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = {**_postgres_connect_args(settings, url), **kwargs.pop("connect_args", {})}
    return create_engine(url, connect_args=connect_args, **kwargs)


def _postgres_connect_args(settings: Settings, url: str) -> dict[str, Any]:
    """libpq parameters bounding connects, dead peers and waits (see the module docstring)."""
    idle = settings.db_keepalives_idle_seconds
    interval = settings.db_keepalives_interval_seconds
    count = settings.db_keepalives_count
    server = {
        "lock_timeout": _ms(settings.db_lock_timeout_seconds),
        "statement_timeout": _ms(settings.db_statement_timeout_seconds),
        "idle_in_transaction_session_timeout": _ms(settings.db_idle_in_transaction_seconds),
        # The server's side of the same keepalives: it notices a vanished client too.
        "tcp_keepalives_idle": idle,
        "tcp_keepalives_interval": interval,
        "tcp_keepalives_count": count,
    }
    options = " ".join(f"-c {name}={value}" for name, value in server.items())
    given = make_url(url).query.get("options")
    if isinstance(given, str) and given:
        options = f"{given} {options}"  # later -c wins: ours bound the session
    return {
        "connect_timeout": settings.db_connect_timeout_seconds,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": count,
        # Keepalives only probe an idle connection; this bounds unacknowledged sends.
        "tcp_user_timeout": (idle + interval * count) * 1000,
        "options": options,
    }


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database could not do the work, not that the work
    is wrong: lost or refused connections, lock and statement timeouts, deadlocks and
    serialization failures, and billsync's own ``DatabaseUnavailable`` (a lock held
    too long by another transaction: ``worker.sync.writers.locks.LockBusy``)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        state = _sqlstate(error.orig)
        if state is not None:
            return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES
        if isinstance(error.orig, sqlite3.OperationalError):
            return "locked" in str(error.orig) or "busy" in str(error.orig)
        # No SQLSTATE: the failure happened on the way to the server (connect, socket).
        return isinstance(error, exc.OperationalError | exc.InterfaceError)
    return isinstance(error, exc.DisconnectionError | exc.TimeoutError | ConnectionError)


# Deadlock detected, serialization failure: another transaction won, the server is fine.
_CONTENTION_STATES = frozenset({"40P01", "40001"})


def is_contention(error: BaseException) -> bool:
    """True when ``error`` says another transaction held what this one needed (a
    deadlock, a serialization failure, billsync's ``DatabaseContention``): work to try
    again at once, not an outage to wait out."""
    if isinstance(error, DatabaseContention):
        return True
    if isinstance(error, exc.DBAPIError):
        return _sqlstate(error.orig) in _CONTENTION_STATES
    return False


def _sqlstate(error: BaseException | None) -> str | None:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else None


def database_reachable(sessions: sessionmaker[Session]) -> bool:
    """A cheap round trip: can a transaction be opened and answer ``SELECT 1``?"""
    try:
        with sessions.begin() as session:
            session.execute(text("SELECT 1"))
    except Exception:
        return False
    return True
