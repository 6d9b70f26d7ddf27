"""Status for dashboards: activity, lag, backlog and dead letters, per integration and org-wide."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import Connected, Org
from tests.events import message, project
from tests.integration.test_dead_letters import store
from tests.support import BrokerProbe, send_signed, wait_until
from webhook_gateway import create_app
from worker.messaging.publisher import Publisher
from worker.settings import Settings


def status_of(client: FlaskClient, integration: Connected, org: Org) -> dict:  # type: ignore[type-arg]
    response = client.get(f"/api/v1/integrations/{integration.id}/status", headers=org.auth())
    assert response.status_code == 200
    body: dict = response.get_json()  # type: ignore[type-arg]
    return body


def test_status_reports_what_the_worker_applied_and_when(
    client: FlaskClient, integration: Connected, org: Org, broker: BrokerProbe, worker: None
) -> None:
    for n in range(3):
        send_signed(client, integration, project(f"P{n}", event_id=f"s-{n}"))

    wait_until(lambda: status_of(client, integration, org)["modules"]["projects"]["applied"] == 3)
    body = status_of(client, integration, org)

    projects = body["modules"]["projects"]
    assert projects["synced"] == 3 and projects["refused"] == 0
    assert projects["last_applied_at"] is not None
    assert projects["lag_seconds"] > 0  # the events say they changed on 2026-11-24
    assert body["last_webhook_at"] is not None
    assert body["backlog"] == 0
    assert body["dead_letter_queue"] == 0


def test_status_counts_the_integrations_dead_letters(
    client: FlaskClient,
    integration: Connected,
    org: Org,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    store(pg_sessions, integration.id, 4)

    assert status_of(client, integration, org)["dead_letters"] == 4


def test_the_organization_status_lists_every_integration(
    client: FlaskClient, integration: Connected, org: Org, broker: BrokerProbe
) -> None:
    response = client.get("/api/v1/status", headers=org.auth("viewer"))

    body = response.get_json()
    assert [i["id"] for i in body["integrations"]] == [integration.id]
    assert body["integrations"][0]["status"] == "active"
    assert "backlog" in body


def test_status_answers_reuse_the_queue_depths_they_read_for_a_while(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    integration: Connected,
    org: Org,
    broker: BrokerProbe,
) -> None:
    cached = settings.model_copy(update={"queue_depths_cache_seconds": 3600})
    client = create_app(cached, publisher=publisher, sessions=pg_sessions).test_client()
    assert status_of(client, integration, org)["backlog"] == 0

    publisher.publish([message(project("P1"), integration.id)])
    wait_until(lambda: broker.depth() == 1)

    assert status_of(client, integration, org)["backlog"] == 0  # as read a moment ago
