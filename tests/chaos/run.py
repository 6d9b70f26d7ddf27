"""One chaos run: a deployment, a ledger sent twice and shuffled, faults on a schedule,
and the comparison with the oracle once the queue has drained."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine

from schemas.api import IntegrationCreate
from tests.chaos.compare import Report, compare, processed
from tests.chaos.ledger import make_ledger
from tests.chaos.supervisor import Deployment, deployment
from tests.support import DEAD_LETTER_QUEUE, BrokerProbe, signed_headers
from worker import migrate
from worker.accounts import create_organization
from worker.db import make_sessionmaker
from worker.lifecycle import connect
from worker.settings import Settings

__all__ = ["ChaosConfig", "run_chaos"]

RETRYABLE_PAUSE = 0.2  # seconds between attempts of a delivery not answered 2xx


@dataclass(frozen=True)
class ChaosConfig:
    events: int = 2_000
    workers: int = 3  # at most; the run starts and ends with one
    kills: int = 3
    broker_cut: tuple[str, float] | None = ("reset", 5.0)
    database_cut: tuple[str, float] | None = ("partition", 5.0)
    senders: int = 8
    seed: int = 0
    drain_seconds: float = 600.0


def run_chaos(
    config: ChaosConfig,
    database_url: str,
    broker_url: str,
    *,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[Report, list[str]]:
    """Run the ledger through a faulty deployment; the report and the faults done."""
    ledger = make_ledger(config.events, seed=config.seed)
    deliveries = ledger.deliveries(config.seed)
    key = Fernet.generate_key().decode()
    settings = Settings(database_url=database_url, broker_url=broker_url, credential_key=key)
    engine = create_engine(database_url)
    migrate.upgrade(engine)
    sessions = make_sessionmaker(engine)
    probe = BrokerProbe(broker_url)
    probe.reset()
    with sessions.begin() as session:
        organization, _token = create_organization(session, "chaos")
        created = connect(
            session,
            organization.id,
            IntegrationCreate(portal_id="chaos", modules=["timesheets"]),
            settings=settings,
        )
        integration_id, secret = created.integration.id, created.webhook_secret
    assert secret is not None
    report = Report()
    try:
        with deployment(
            database_url, broker_url, key, port=_free_port(), seed=config.seed
        ) as deployed:
            deployed.scale(1)
            sender = _Sender(deployed.gateway_url, integration_id, secret, report)
            schedule = _Schedule(config, deployed, len(deliveries), sender)
            schedule.start()
            with ThreadPoolExecutor(config.senders) as pool:
                list(pool.map(sender.deliver, deliveries))
            sender.close()
            schedule.join()
            progress(f"sent {report.sent:,}, accepted {report.accepted:,}; draining")
            _drain(sessions, probe, integration_id, config.drain_seconds)
            actions = list(deployed.actions)
        final = compare(
            sessions,
            integration_id,
            ledger.expected,
            dead_letter_queue_depth=probe.depth(DEAD_LETTER_QUEUE),
        )
    finally:
        engine.dispose()
    final.sent, final.accepted, final.gave_up = report.sent, report.accepted, report.gave_up
    return final, actions


class _Sender:
    """Delivers each event as a portal would: retried until it is answered 2xx."""

    def __init__(self, base_url: str, integration_id: str, secret: str, report: Report) -> None:
        self.url = f"{base_url}/webhooks/{integration_id}"
        self.secret = secret
        self.report = report
        self.lock = threading.Lock()
        self.local = threading.local()
        self.clients: list[httpx.Client] = []

    def deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        deadline = time.monotonic() + 300
        with self.lock:
            self.report.sent += 1
        while time.monotonic() < deadline:
            try:
                headers = signed_headers(self.secret, body, msg_id=event["event_id"])
                status = self._client().post(self.url, content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 0
            if 200 <= status < 300:
                with self.lock:
                    self.report.accepted += 1
                return
            if 400 <= status < 500 and status != 429:
                break  # a valid event refused: counted, not retried
            time.sleep(RETRYABLE_PAUSE)
        with self.lock:
            self.report.gave_up += 1

    @property
    def done(self) -> int:
        return self.report.sent

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=30)
            with self.lock:
                self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()


class _Schedule(threading.Thread):
    """Faults at fractions of the deliveries sent: more workers for a third of the run,
    kills spread over it, the broker cut at 40 %, the database cut at 70 %."""

    def __init__(
        self, config: ChaosConfig, deployed: Deployment, total: int, sender: _Sender
    ) -> None:
        super().__init__(daemon=True)
        self.deployed = deployed
        self.total = total
        self.sender = sender
        steps: list[tuple[float, Callable[[], None]]] = [
            (0.2, lambda: deployed.scale(config.workers)),
            (0.55, lambda: deployed.scale(1)),
        ]
        steps += [((n + 1) / (config.kills + 1), deployed.kill_one) for n in range(config.kills)]
        for fraction, which, cut in (
            (0.4, "broker", config.broker_cut),
            (0.7, "database", config.database_cut),
        ):
            if cut is not None:
                steps.append((fraction, partial(deployed.cut, which, *cut)))
        self.steps = sorted(steps, key=lambda step: step[0])

    def run(self) -> None:
        for fraction, action in self.steps:
            while self.sender.done < fraction * self.total:
                time.sleep(0.05)
            action()


def _drain(sessions: Any, probe: BrokerProbe, integration_id: str, seconds: float) -> None:
    """Until the queue is empty and the ledger of processed events stops growing."""
    deadline = time.monotonic() + seconds
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = processed(sessions, integration_id)
        if count != last:
            last, quiet_since = count, time.monotonic()
        elif probe.depth() == 0 and time.monotonic() - quiet_since > 10:
            return
        time.sleep(0.5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
