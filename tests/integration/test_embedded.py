"""The embedded default end to end: `billsync run` with no servers, a signed webhook in,
the record read back."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.events import Event, project, webhook_body
from tests.support import wait_until

pytestmark = pytest.mark.integration

BILLSYNC = [sys.executable, "-m", "worker.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env["BILLSYNC_DATA_DIR"] = str(tmp_path / "data")
    return env


def billsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BILLSYNC, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


class Service:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [*BILLSYNC, "run", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(self._ready, timeout=30)

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"billsync run exited: {self.process.stderr.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture
def service(embedded_env: dict[str, str]) -> Iterator[Service]:
    running = Service(embedded_env)
    yield running
    running.stop()


def _setup(env: dict[str, str], service: Service) -> tuple[dict[str, str], dict[str, Any]]:
    created = billsync(env, "org", "create", "Acme")
    assert created.returncode == 0, created.stderr
    auth = {"Authorization": f"Bearer {json.loads(created.stdout)['admin_token']}"}
    integration = httpx.post(
        f"{service.url}/api/v1/integrations", json={"portal_id": "portal-1"}, headers=auth
    ).json()
    return auth, integration


def send_event(
    env: dict[str, str],
    service: Service,
    integration_id: str,
    secret: str,
    event: Event,
    tmp_path: Path,
) -> subprocess.CompletedProcess[str]:
    """`billsync webhook send` of ``event`` to the running service."""
    event_file = tmp_path / "event.json"
    event_file.write_bytes(webhook_body(event))
    url = f"{service.url}/webhooks/{integration_id}"
    return billsync(env, "webhook", "send", str(event_file), "--url", url, "--secret", secret)


def test_billsync_run_applies_a_signed_webhook_sent_with_billsync_webhook_send(
    embedded_env: dict[str, str], service: Service, tmp_path: Path
) -> None:
    auth, integration = _setup(embedded_env, service)
    event = project(name="Apollo", event_id="e-1")

    sent = send_event(
        embedded_env, service, integration["id"], integration["webhook_secret"], event, tmp_path
    )

    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("202 ")
    projects = wait_until(
        lambda: httpx.get(f"{service.url}/api/v1/projects", headers=auth).json()["items"]
    )
    assert [(p["name"], p["source_id"]) for p in projects] == [("Apollo", "P1")]


def test_webhook_send_with_a_wrong_secret_exits_non_zero_with_the_answer(
    embedded_env: dict[str, str], service: Service, tmp_path: Path
) -> None:
    _, integration = _setup(embedded_env, service)
    wrong = "whsec_" + "A" * 44
    sent = send_event(embedded_env, service, integration["id"], wrong, project(), tmp_path)
    assert sent.returncode == 1
    assert "401" in sent.stdout and "invalid_signature" in sent.stdout


def test_cli_errors_are_clear_messages_with_a_non_zero_exit(embedded_env: dict[str, str]) -> None:
    result = billsync(embedded_env, "token", "create", "--org", "no-such-org")
    assert result.returncode != 0
    assert "no organization no-such-org" in result.stderr
