"""/healthz says the process is up; /readyz says whether the database (migrated to this
code's schema) and the broker answer."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.tcp_proxy import broker_through_proxy
from webhook_gateway import create_app
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings

pytestmark = pytest.mark.integration


def test_healthz_answers_while_the_process_is_up(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_broker_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": True, "schema": True, "broker": True}


def test_readyz_is_503_and_names_the_broker_when_it_is_unreachable(
    settings: Settings, pg_sessions: sessionmaker[Session]
) -> None:
    proxy, proxied = broker_through_proxy(settings)
    with proxy:
        proxy.cut()
        publisher = Publisher(proxied, build_topology(proxied))
        client = create_app(proxied, publisher=publisher, sessions=pg_sessions).test_client()
        response = client.get("/readyz")
        publisher.close()
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": True, "schema": True, "broker": False}
