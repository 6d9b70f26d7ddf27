"""POST /webhooks/<id> on real RabbitMQ and PostgreSQL: every status, and 202 means durable."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, update
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.conftest import Connected, Org
from tests.events import project, webhook_body
from tests.support import (
    BrokerProbe,
    Recorder,
    row_count,
    running,
    signed_headers,
    wait_until,
)
from tests.tcp_proxy import broker_through_proxy
from webhook_gateway import create_app
from worker.cli.runtime import build_consumer
from worker.db import Integration, Project
from worker.db.base import utcnow
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.settings import Settings

pytestmark = pytest.mark.integration


def _post(client: FlaskClient, integration: Connected, payload: Any, **kwargs: Any) -> Any:
    body = payload if isinstance(payload, bytes) else webhook_body(payload)
    return client.post(
        integration.url, data=body, headers=signed_headers(integration.secret, body), **kwargs
    )


def _assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["error"] == code
    assert body["message"]
    assert "details" in body
    return body


# -- 202 means durable -----------------------------------------------------------------


def test_accepted_event_is_in_the_queue_persistent_with_id_and_module_headers(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    response = _post(client, integration, project(event_id="evt-1"))

    assert response.status_code == 202
    assert response.get_json() == {"event_id": "evt-1", "status": "queued"}
    method, properties, body = broker.get()
    assert properties.delivery_mode == 2
    assert properties.headers["event-id"] == "evt-1"
    assert properties.headers["module"] == "projects"
    assert properties.headers["integration-id"] == integration.id
    assert method.routing_key == "projects.updated"
    assert QueueMessage.model_validate_json(body).event_id == "evt-1"


def test_webhook_id_header_is_the_event_id_when_the_envelope_has_none(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    body = webhook_body(project())
    headers = signed_headers(integration.secret, body, msg_id="msg_abc")
    response = client.post(integration.url, data=body, headers=headers)
    assert response.get_json() == {"event_id": "msg_abc", "status": "queued"}


def test_an_event_sent_again_after_it_was_applied_is_queued_and_applied_once(
    client: FlaskClient,
    integration: Connected,
    broker: BrokerProbe,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
) -> None:
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, hooks=[recorder])):
        first = _post(client, integration, project(name="Apollo", event_id="evt-seen"))
        wait_until(lambda: recorder.statuses() == ["applied"])

        again = _post(client, integration, project(name="Apollo", event_id="evt-seen"))
        wait_until(lambda: recorder.statuses() == ["applied", "duplicate"])

    # The gateway does not look event ids up (that would cost every request a query):
    # the worker's ledger is what skips the second copy.
    assert first.get_json() == again.get_json() == {"event_id": "evt-seen", "status": "queued"}
    assert row_count(pg_sessions, Project) == 1
    assert broker.depth() == 0


def test_a_known_integrations_webhook_takes_no_database_connection(
    settings: Settings,
    publisher: Publisher,
    pg_sessions: sessionmaker[Session],
    pg_engine: Engine,
    org: Org,
    broker: BrokerProbe,
) -> None:
    cached = settings.model_copy(update={"credentials_cache_seconds": 3600})
    client = create_app(cached, publisher=publisher, sessions=pg_sessions).test_client()
    created = client.post("/api/v1/integrations", json={"portal_id": "p"}, headers=org.auth())
    integration = Connected(created.get_json()["id"], created.get_json()["webhook_secret"])
    assert _post(client, integration, project(event_id="first")).status_code == 202
    checkouts: list[object] = []

    def checked_out(*args: object) -> None:
        checkouts.append(args)

    event.listen(pg_engine, "checkout", checked_out)
    try:
        response = _post(client, integration, project(event_id="second"))
    finally:
        event.remove(pg_engine, "checkout", checked_out)

    assert response.status_code == 202
    assert checkouts == []  # credentials from the cache, and no duplicate lookup
    assert broker.depth() == 2


def test_an_array_of_events_is_published_whole(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    events = [project("P1", event_id="a-1"), project("P2", event_id="a-2")]
    response = _post(client, integration, events)
    assert response.status_code == 202
    assert [i["event_id"] for i in response.get_json()["items"]] == ["a-1", "a-2"]
    assert broker.depth() == 2


def test_an_array_with_one_invalid_event_publishes_nothing(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    bad = project("P2")
    del bad["data"]["name"]
    body = _assert_error(_post(client, integration, [project("P1"), bad]), 422, "validation_failed")
    assert body["details"][0]["path"] == "1.data.name"
    assert broker.depth() == 0


# -- every error status, and nothing published --------------------------------------------


def test_unknown_integration_is_404(client: FlaskClient, broker: BrokerProbe) -> None:
    body = webhook_body(project())
    response = client.post(
        "/webhooks/nope", data=body, headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 404, "unknown_integration")
    assert broker.depth() == 0


def test_deleted_integration_is_409(
    client: FlaskClient,
    integration: Connected,
    broker: BrokerProbe,
    pg_sessions: sessionmaker[Session],
) -> None:
    with pg_sessions.begin() as session:
        session.execute(
            update(Integration).where(Integration.id == integration.id).values(deleted_at=utcnow())
        )
    _assert_error(_post(client, integration, project()), 409, "integration_deleted")
    assert broker.depth() == 0


def test_body_over_the_limit_is_413(
    client: FlaskClient, integration: Connected, broker: BrokerProbe, settings: Settings
) -> None:
    event = project()
    event["data"]["notes"] = "x" * (settings.webhook_max_bytes + 1)
    _assert_error(_post(client, integration, event), 413, "payload_too_large")
    assert broker.depth() == 0


def test_body_that_is_not_json_is_415(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    body = b"module=projects"
    headers = {**signed_headers(integration.secret, body), "Content-Type": "text/plain"}
    _assert_error(
        client.post(integration.url, data=body, headers=headers), 415, "unsupported_media_type"
    )
    assert broker.depth() == 0


def test_bad_signature_is_401(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    body = webhook_body(project())
    headers = signed_headers(integration.secret, body)
    response = client.post(integration.url, data=body + b" ", headers=headers)
    _assert_error(response, 401, "invalid_signature")
    assert broker.depth() == 0


def test_unsigned_request_is_401(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    body = webhook_body(project())
    response = client.post(integration.url, data=body, headers={"Content-Type": "application/json"})
    _assert_error(response, 401, "invalid_signature")
    assert broker.depth() == 0


def test_malformed_json_is_400(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    _assert_error(_post(client, integration, b'{"module": "projects",'), 400, "malformed_json")
    assert broker.depth() == 0


def test_schema_violation_is_422_with_the_field_path(
    client: FlaskClient, integration: Connected, broker: BrokerProbe
) -> None:
    event = project()
    event["data"]["status"] = "paused"
    body = _assert_error(_post(client, integration, event), 422, "validation_failed")
    assert [d["path"] for d in body["details"]] == ["data.status"]
    assert broker.depth() == 0


# -- token mode ----------------------------------------------------------------------------


@pytest.fixture
def token_integration(client: FlaskClient, org: Org) -> tuple[str, str]:
    response = client.post(
        "/api/v1/integrations",
        json={"portal_id": "portal-t", "verification": "token"},
        headers=org.auth(),
    )
    assert response.status_code == 201
    body = response.get_json()
    assert "webhook_secret" not in body
    return body["id"], body["webhook_token"]


def test_token_mode_accepts_the_token_in_a_header(
    client: FlaskClient, token_integration: tuple[str, str], broker: BrokerProbe
) -> None:
    integration_id, token = token_integration
    response = client.post(
        f"/webhooks/{integration_id}", json=project(), headers={"X-Billsync-Token": token}
    )
    assert response.status_code == 202
    assert response.get_json()["event_id"].startswith("sha256-")
    assert broker.depth() == 1


def test_token_mode_accepts_the_token_as_a_query_parameter(
    client: FlaskClient, token_integration: tuple[str, str], broker: BrokerProbe
) -> None:
    integration_id, token = token_integration
    response = client.post(f"/webhooks/{integration_id}?token={token}", json=project())
    assert response.status_code == 202


def test_token_mode_rejects_a_wrong_token(
    client: FlaskClient, token_integration: tuple[str, str], broker: BrokerProbe
) -> None:
    integration_id, _ = token_integration
    response = client.post(
        f"/webhooks/{integration_id}", json=project(), headers={"X-Billsync-Token": "bwt_x"}
    )
    _assert_error(response, 401, "invalid_signature")
    assert broker.depth() == 0


def test_token_mode_retries_of_an_id_less_event_share_one_event_id(
    client: FlaskClient, token_integration: tuple[str, str], broker: BrokerProbe
) -> None:
    integration_id, token = token_integration
    ids = {
        client.post(
            f"/webhooks/{integration_id}", json=project(), headers={"X-Billsync-Token": token}
        ).get_json()["event_id"]
        for _ in range(2)
    }
    assert len(ids) == 1


# -- broker unreachable ----------------------------------------------------------------------


def test_broker_unreachable_is_503_with_retry_after_and_nothing_published_later(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
    org: Org,
) -> None:
    proxy, proxied = broker_through_proxy(settings)
    with proxy:
        publisher = Publisher(proxied, build_topology(proxied))
        client = create_app(proxied, publisher=publisher, sessions=pg_sessions).test_client()
        created = client.post("/api/v1/integrations", json={"portal_id": "p"}, headers=org.auth())
        integration = Connected(created.get_json()["id"], created.get_json()["webhook_secret"])
        assert _post(client, integration, project(event_id="before")).status_code == 202
        broker.get()  # the first one went through; take it out

        proxy.cut()
        started = time.monotonic()
        response = _post(client, integration, project(event_id="during"))
        elapsed = time.monotonic() - started

        body = _assert_error(response, 503, "broker_unavailable")
        assert response.headers["Retry-After"] == str(settings.retry_after_seconds)
        assert elapsed < 10, "a dead broker must not hold the request for long"
        assert json.dumps(body)
        proxy.restore()
        # The next event goes through alone: the refused one was not queued behind it.
        assert _post(client, integration, project(event_id="after")).status_code == 202
        queued = broker.get()
        assert queued is not None and queued[1].headers["event-id"] == "after"
        assert broker.depth() == 0
        publisher.close()


# -- secret rotation ---------------------------------------------------------------------------


def test_after_a_rotation_both_the_old_and_the_new_secret_are_accepted(
    client: FlaskClient, integration: Connected, org: Org, broker: BrokerProbe
) -> None:
    assert _post(client, integration, project(event_id="before")).status_code == 202
    rotated = client.post(
        f"/api/v1/integrations/{integration.id}/secrets/rotate", headers=org.auth()
    )
    assert rotated.status_code == 201
    new = Connected(integration.id, rotated.get_json()["webhook_secret"])

    assert _post(client, new, project(event_id="with-new")).status_code == 202
    assert _post(client, integration, project(event_id="with-old")).status_code == 202
    assert broker.depth() == 3


def test_a_viewer_cannot_rotate_the_secret(
    client: FlaskClient, integration: Connected, org: Org
) -> None:
    response = client.post(
        f"/api/v1/integrations/{integration.id}/secrets/rotate", headers=org.auth("viewer")
    )
    assert response.status_code == 403
