"""Metrics are right under gunicorn: every scrape of a several-process ``billsync
gateway`` counts every process's webhooks, and ``billsync worker`` shows the same
state gauges as the gateway."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import CREDENTIAL_KEY, Connected
from tests.events import project, webhook_body
from tests.support import BrokerProbe, signed_headers, wait_until
from worker.messaging.dead_letters import archive
from worker.messaging.gauges import serve_worker_metrics
from worker.settings import Settings

WEBHOOKS = 8
SCRAPES = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text answer (None: not there)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


@dataclass
class Gateway:
    url: str
    temp: Path  # the gateway's TMPDIR
    process: subprocess.Popen[bytes]

    def scrape(self) -> str:
        # A new connection each time, so the scrapes land on either process.
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def gateway(
    tmp_path: Path, database_url: str, broker_url: str, pg_engine: Engine, broker: BrokerProbe
) -> Iterator[Gateway]:
    """The real ``billsync gateway``: gunicorn with its default 2 workers, no
    PROMETHEUS_MULTIPROC_DIR."""
    port, temp = free_port(), tmp_path / "tmp"
    temp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env |= {
        "TMPDIR": str(temp),
        "BILLSYNC_DATA_DIR": str(tmp_path),
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_CREDENTIAL_KEY": CREDENTIAL_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "gateway", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    running = Gateway(f"http://127.0.0.1:{port}", temp, process)
    try:
        wait_until(lambda: _up(running.url), timeout=30)
        yield running
    finally:
        running.stop()


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def send(gateway: Gateway, integration: Connected, count: int) -> None:
    for n in range(count):
        body = webhook_body(project(f"P{n}", event_id=f"metrics-{n}"))
        answer = httpx.post(
            f"{gateway.url}{integration.url}",
            content=body,
            headers=signed_headers(integration.secret, body),
            timeout=10,
        )
        assert answer.status_code == 202, answer.text


def test_every_scrape_of_a_two_process_gateway_counts_every_webhook(
    gateway: Gateway, integration: Connected
) -> None:
    send(gateway, integration, WEBHOOKS)

    counted = [
        sample(gateway.scrape(), "billsync_webhooks_received_total", status="202")
        for _ in range(SCRAPES)
    ]

    assert counted == [WEBHOOKS] * SCRAPES


def test_the_gateways_own_metrics_directory_is_removed_when_it_stops(
    gateway: Gateway, integration: Connected
) -> None:
    send(gateway, integration, 1)
    made = list(gateway.temp.glob("billsync-metrics-*"))
    counted_in = [f.name for directory in made for f in directory.glob("counter_*.db")]

    gateway.stop()

    assert len(made) == 1 and counted_in
    assert list(gateway.temp.iterdir()) == []


def test_the_worker_shows_the_same_state_gauges_as_the_gateway(
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    client: FlaskClient,
    broker: BrokerProbe,
) -> None:
    with pg_sessions.begin() as session:
        for body in ("first", "second"):
            archive(session, body, {"x-billsync-error-class": "RuntimeError"}, "projects.updated")
    worker_settings = settings.model_copy(update={"metrics_port": free_port()})
    served = serve_worker_metrics(worker_settings, pg_sessions)
    try:
        url = f"http://{worker_settings.host}:{worker_settings.metrics_port}/metrics"
        from_worker = httpx.get(url, timeout=10).text
    finally:
        served.close()
    from_gateway = client.get("/metrics").get_data(as_text=True)

    for name, labels in (
        ("billsync_dead_letters", {}),
        ("billsync_queue_backlog", {"queue": "billsync.apply"}),
        ("billsync_queue_backlog", {"queue": "billsync.dead-letters"}),
    ):
        shown = (sample(from_worker, name, **labels), sample(from_gateway, name, **labels))
        assert shown[0] is not None and shown[0] == shown[1], (name, labels, shown)
    assert sample(from_worker, "billsync_dead_letters") == 2
