"""Fixtures that own real services: a fresh PostgreSQL database and RabbitMQ vhost per run.

Integration tests never skip: if a server is missing, every test that needs it
fails with the command that starts it (tests/servers.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests import servers
from tests.support import BrokerProbe
from webhook_gateway import create_app
from worker.accounts.organizations import create_organization, create_token
from worker.db import Base, make_sessionmaker, migrate
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings

# One key per test run: credentials stored by one test stay readable by its workers.
CREDENTIAL_KEY = Fernet.generate_key().decode()
# Tests pace the portal only where they test the pacing.
UNTHROTTLED = 1_000_000
# The fake portals the tests connect (any port), besides Zoho's own hosts.
FAKE_PORTAL_HOSTS = "127.0.0.1,portal.test"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    servers.stop_all()


def _required(find: Any) -> str:
    try:
        url: str = find()
    except servers.ServerMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    return url


# -- servers --------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A PostgreSQL database created for this run and dropped after it."""
    server = make_url(_required(servers.postgres_server_url))
    name = f"billsync_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def broker_url() -> str:
    return _required(servers.rabbitmq_url)


@pytest.fixture(scope="session")
def pg_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    migrate.upgrade_schema(engine)
    yield engine
    engine.dispose()


def _truncate(engine: Engine) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def pg_sessions(pg_engine: Engine) -> sessionmaker[Session]:
    """Sessions on the run's PostgreSQL database, emptied before the test."""
    _truncate(pg_engine)
    return make_sessionmaker(pg_engine)


@pytest.fixture
def sqlite_sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'billsync.sqlite'}")
    migrate.upgrade_schema(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def any_sessions(request: pytest.FixtureRequest) -> sessionmaker[Session]:
    """The same test on PostgreSQL and on the embedded SQLite database."""
    name = "pg_sessions" if request.param == "postgresql" else "sqlite_sessions"
    sessions: sessionmaker[Session] = request.getfixturevalue(name)
    return sessions


@pytest.fixture
def broker(broker_url: str) -> BrokerProbe:
    """RabbitMQ seen from outside, with billsync's queues deleted before the test."""
    probe = BrokerProbe(broker_url)
    probe.reset()
    return probe


# -- billsync wired on the real servers ---------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, database_url: str, broker_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        broker_url=broker_url,
        batch_max_wait_ms=20,
        retry_base_seconds=0.05,
        retry_max_seconds=0.2,
        publish_max_retries=1,
        publish_confirm_timeout_seconds=2,
        publish_connect_timeout_seconds=1,
        credential_key=CREDENTIAL_KEY,
        portal_rate_calls=UNTHROTTLED,
        portal_allowed_hosts=FAKE_PORTAL_HOSTS,
        # Status answers read the queues afresh: tests look at depths right after a change.
        queue_depths_cache_seconds=0,
    )


@pytest.fixture
def publisher(settings: Settings, broker: BrokerProbe) -> Iterator[Publisher]:
    publisher = Publisher(settings, build_topology(settings))
    yield publisher
    publisher.close()


@pytest.fixture
def app(settings: Settings, pg_sessions: sessionmaker[Session], publisher: Publisher) -> Flask:
    return create_app(settings, publisher=publisher, sessions=pg_sessions)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass(frozen=True)
class Org:
    id: str
    admin_token: str
    viewer_token: str

    def auth(self, role: str = "admin") -> dict[str, str]:
        token = self.admin_token if role == "admin" else self.viewer_token
        return {"Authorization": f"Bearer {token}"}


def make_org(sessions: sessionmaker[Session], name: str) -> Org:
    with sessions.begin() as session:
        organization, admin = create_organization(session, name)
        viewer = create_token(session, organization.id, "viewer")
        return Org(organization.id, admin, viewer)


@pytest.fixture
def org(pg_sessions: sessionmaker[Session]) -> Org:
    return make_org(pg_sessions, "Acme")


@dataclass(frozen=True)
class Connected:
    id: str
    secret: str

    @property
    def url(self) -> str:
        return f"/webhooks/{self.id}"


@pytest.fixture
def integration(client: FlaskClient, org: Org) -> Connected:
    response = client.post(
        "/api/v1/integrations",
        json={"portal_id": "portal-1", "modules": ["timesheets"]},
        headers=org.auth(),
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Connected(body["id"], body["webhook_secret"])
