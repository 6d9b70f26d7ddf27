"""/metrics moves as events flow (Prometheus text format)."""

from __future__ import annotations

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Connected
from tests.events import project
from tests.support import BrokerProbe, send_signed, wait_until


def sample(client: FlaskClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_webhook_and_event_counters_move_as_events_flow(
    client: FlaskClient, integration: Connected, broker: BrokerProbe, worker: None
) -> None:
    accepted = sample(client, "billsync_webhooks_received_total", status="202")
    refused = sample(client, "billsync_webhooks_received_total", status="401")
    applied = sample(client, "billsync_events_total", module="projects", outcome="applied")
    batches = sample(client, "billsync_apply_batch_seconds_count")

    send_signed(client, integration, project("P1", event_id="m-1"))
    client.post(integration.url, json={}, headers={"webhook-id": "x"})
    wait_until(
        lambda: (
            sample(client, "billsync_events_total", module="projects", outcome="applied")
            == applied + 1
        )
    )

    assert sample(client, "billsync_webhooks_received_total", status="202") == accepted + 1
    assert sample(client, "billsync_webhooks_received_total", status="401") == refused + 1
    assert sample(client, "billsync_apply_batch_seconds_count") > batches
    assert sample(client, "billsync_queue_backlog", queue="billsync.apply") == 0
