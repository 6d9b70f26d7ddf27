"""One chaos run: a deployment, a ledger sent twice and shuffled, faults on a schedule,
and the comparison with the oracle once the queue has drained."""

from __future__ import annotations

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
from tests.chaos.ledger import EVENT_ID_PREFIX, Ledger, make_ledger
from tests.chaos.supervisor import Deployment, deployment
from tests.events import Event, webhook_body
from tests.support import DEAD_LETTER_QUEUE, BrokerProbe, signed_headers, wait_until
from worker.accounts.organizations import create_organization
from worker.db import make_sessionmaker, migrate
from worker.integrations.lifecycle import connect
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
    migrate.upgrade_schema(engine)
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
            _drain(sessions, probe, integration_id, ledger, config.drain_seconds)
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
        self.lock = threading.Condition()  # notified at each delivery started
        self.local = threading.local()
        self.clients: list[httpx.Client] = []

    def deliver(self, event: Event) -> None:
        body = webhook_body(event)
        deadline = time.monotonic() + 300
        with self.lock:
            self.report.sent += 1
            self.lock.notify_all()
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
            time.sleep(RETRYABLE_PAUSE)  # the sender's back-off, as a portal's would be
        with self.lock:
            self.report.gave_up += 1

    def wait_for(self, deliveries: float) -> None:
        """Until this many deliveries have started."""
        with self.lock:
            self.lock.wait_for(lambda: self.report.sent >= deliveries)

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
            self.sender.wait_for(fraction * self.total)
            action()


def _drain(
    sessions: Any, probe: BrokerProbe, integration_id: str, ledger: Ledger, seconds: float
) -> None:
    """Until every event of the ledger is in the processed-event ledger and the queue is
    empty (the second copies consumed too). A run that never gets there is compared
    as it stands: what is missing is the report's to show."""

    def drained() -> bool:
        applied = processed(sessions, integration_id, EVENT_ID_PREFIX)
        return applied == len(ledger.events) and probe.depth() == 0

    try:
        wait_until(drained, timeout=seconds, interval=0.5)
    except AssertionError:
        return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
