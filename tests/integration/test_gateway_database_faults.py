"""The gateway with its PostgreSQL cut (tests/tcp_proxy.py in front of it).

The choice: webhooks of integrations the gateway knows keep being accepted into the
broker with the cached credentials (the gateway needs no other query), and are applied
once the database is back; an integration it cannot verify is 503 with Retry-After.
Never a 500, and never a 2xx before the broker confirmed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Connected, Org
from tests.events import Event, project, webhook_body
from tests.support import BrokerProbe, running, signed_headers, wait_until
from tests.tcp_proxy import TcpProxy
from webhook_gateway import create_app
from webhook_gateway.services import Services
from worker.cli.runtime import build_consumer
from worker.db import Project, make_engine, make_sessionmaker
from worker.messaging.publisher import Publisher
from worker.settings import Settings

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Gateway:
    client: FlaskClient
    services: Services
    proxy: TcpProxy
    settings: Settings


@pytest.fixture
def gateway(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    database_url: str,
) -> Iterator[Gateway]:
    """The app on a database reached through a proxy the test can cut."""
    url = make_url(database_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        proxied = settings.model_copy(
            update={
                "database_url": url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                    hide_password=False
                ),
                "credentials_cache_max_entries": 50,
            }
        )
        engine = make_engine(proxied)
        app = create_app(proxied, publisher=publisher, sessions=make_sessionmaker(engine))
        yield Gateway(app.test_client(), app.extensions["billsync"], proxy, proxied)
        engine.dispose()


@pytest.fixture
def connected(gateway: Gateway, org: Org) -> Connected:
    created = gateway.client.post(
        "/api/v1/integrations", json={"portal_id": "portal-1"}, headers=org.auth()
    )
    assert created.status_code == 201, created.get_json()
    return Connected(created.get_json()["id"], created.get_json()["webhook_secret"])


def _send(client: FlaskClient, integration: Connected, event: Event) -> Any:
    body = webhook_body(event)
    return client.post(integration.url, data=body, headers=signed_headers(integration.secret, body))


def _project_names(sessions: sessionmaker[Session]) -> set[str | None]:
    with sessions() as session:
        return set(session.scalars(select(Project.name)))


def test_webhooks_of_a_known_integration_are_accepted_during_an_outage_and_applied_after(
    gateway: Gateway,
    connected: Connected,
    broker: BrokerProbe,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
) -> None:
    assert _send(gateway.client, connected, project("P0", name="Before")).status_code == 202

    gateway.proxy.cut()
    answers = [
        _send(gateway.client, connected, project(f"P{n}", name=f"During {n}")) for n in range(1, 4)
    ]

    assert [a.status_code for a in answers] == [202, 202, 202]
    assert all(a.get_json()["status"] == "queued" for a in answers)
    assert broker.depth() == 4
    gateway.proxy.restore()
    with running(build_consumer(settings, pg_sessions)):
        wait_until(lambda: {"During 1", "During 2", "During 3"} <= _project_names(pg_sessions))


def test_an_integration_the_gateway_cannot_verify_during_an_outage_is_503_with_retry_after(
    gateway: Gateway, connected: Connected, broker: BrokerProbe
) -> None:
    gateway.proxy.cut()
    unseen = Connected(str(uuid.uuid4()), connected.secret)

    response = _send(gateway.client, unseen, project())

    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(gateway.settings.retry_after_seconds)
    assert response.get_json()["error"] == "database_unavailable"
    assert broker.depth() == 0


def test_a_wrong_signature_during_an_outage_is_still_401(
    gateway: Gateway, connected: Connected, broker: BrokerProbe
) -> None:
    assert _send(gateway.client, connected, project()).status_code == 202
    gateway.proxy.cut()
    forged = Connected(connected.id, "whsec_" + "A" * 43)

    response = _send(gateway.client, forged, project())

    assert response.status_code == 401
    assert broker.depth() == 1


def test_the_api_answers_503_with_retry_after_while_the_database_is_cut(
    gateway: Gateway, connected: Connected, org: Org
) -> None:
    gateway.proxy.cut()
    for path in ("/api/v1/projects", f"/api/v1/integrations/{connected.id}", "/api/v1/status"):
        response = gateway.client.get(path, headers=org.auth())
        assert response.status_code == 503, (path, response.get_data(as_text=True))
        assert response.get_json()["error"] == "database_unavailable"
        assert response.headers["Retry-After"]


def test_unknown_integration_ids_never_grow_the_cache_beyond_its_bound(
    gateway: Gateway, connected: Connected, broker: BrokerProbe
) -> None:
    bound = gateway.settings.credentials_cache_max_entries
    statuses = set()
    for _ in range(bound * 4):
        unknown = Connected(str(uuid.uuid4()), connected.secret)
        statuses.add(_send(gateway.client, unknown, project()).status_code)
        assert len(gateway.services.credentials_cache) <= bound
    assert statuses == {404}


def test_ids_that_cannot_be_integration_ids_are_not_looked_up_nor_cached(
    gateway: Gateway, broker: BrokerProbe
) -> None:
    gateway.proxy.cut()  # no query may be needed to refuse them
    for junk in ("x" * 37, "abc def", "ünïcode", "1;DROP", "a" * 5000):
        response = gateway.client.post(f"/webhooks/{junk}", json=project())
        assert response.status_code == 404, junk
    assert len(gateway.services.credentials_cache) == 0
