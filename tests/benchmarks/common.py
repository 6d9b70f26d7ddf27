"""What the benchmarks share: a throwaway PostgreSQL database and a RabbitMQ vhost on
the suite's servers, billsync's own processes (gateway, worker) started and stopped
around a measurement, a tenant to send events for, and ways to watch the queue, the
applied count and a process's memory from outside."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pika
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from schemas import QueueMessage, routing_key
from schemas.api import IntegrationCreate
from tests import servers
from worker.accounts.organizations import create_organization
from worker.db import IntegrationActivity, make_sessionmaker
from worker.integrations.lifecycle import connect
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1
APPLY_QUEUE = "billsync.apply"
EVENTS_EXCHANGE = "billsync.events"
# One key per benchmark process: what one step seals, the gateway and worker can open.
CREDENTIAL_KEY = Fernet.generate_key().decode()


@contextmanager
def temporary_database() -> Iterator[str]:
    """A new database's URL, dropped afterwards (found as the test suite finds servers)."""
    server = make_url(servers.postgres_server_url())
    name = f"billsync_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_broker: list[str] = []


def broker_url() -> str:
    """RabbitMQ, on one vhost for the whole benchmark process (``servers.stop_all()``
    removes it); each row starts by deleting billsync's queues."""
    if not _broker:
        _broker.append(servers.rabbitmq_url())
    return _broker[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def settings_for(database_url: str, **extra: Any) -> Settings:
    """Settings as billsync's processes get them from ``billsync_env``."""
    return Settings(
        database_url=database_url,
        broker_url=broker_url(),
        credential_key=CREDENTIAL_KEY,
        log_level="WARNING",
        **extra,
    )


def billsync_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``billsync`` process: this one's without any BILLSYNC_*
    setting of the caller's, on the benchmark's database and broker."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BILLSYNC_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env | {
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url(),
        "BILLSYNC_CREDENTIAL_KEY": CREDENTIAL_KEY,
        "BILLSYNC_LOG_LEVEL": "WARNING",
        "BILLSYNC_METRICS_PORT": str(free_port()),
        **extra,
    }


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Process:
    """A process this benchmark started, in a process group of its own."""

    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    name: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def check(self) -> None:
        """Raise with its output if it has exited."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM to its group; SIGKILL to what is left after 30 s."""
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


def end_with_parent() -> None:
    """In the child: SIGTERM when this process dies, even killed (Linux), so that a
    benchmark cut short leaves no gateway or worker behind."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def started(
    name: str,
    command: Sequence[str],
    env: dict[str, str],
    *,
    ready: Callable[[], Any] | None = None,
    timeout: float = 60,
) -> Iterator[Process]:
    """``command`` running (and ``ready()`` true) for the block; stopped afterwards."""
    log = tempfile.TemporaryFile()
    popen = subprocess.Popen(
        list(command),
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=end_with_parent,
    )
    process = Process(popen, log, name)
    try:
        if ready is not None:

            def up() -> Any:
                process.check()
                return ready()

            try:
                wait_for(up, timeout, f"{name} ready")
            except TimeoutError as exc:
                raise RuntimeError(f"{exc}; its output:\n{process.output()}") from exc
        yield process
    finally:
        process.stop()


def http_up(url: str) -> bool:
    """The server answers HTTP at all (any status: a bare app has no /healthz)."""
    try:
        httpx.get(f"{url}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@contextmanager
def gateway(database_url: str, **extra: str) -> Iterator[str]:
    """``billsync gateway`` (its default gunicorn settings) on a free port; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "billsync"), "gateway", "--port", str(port)]
    with started(
        "billsync gateway", command, billsync_env(database_url, **extra), ready=lambda: http_up(url)
    ):
        yield url


@contextmanager
def worker(database_url: str, **extra: str) -> Iterator[Process]:
    """``billsync worker``, consuming once the block starts (the caller watches the
    queue for its consumer when it matters)."""
    command = [str(BIN / "billsync"), "worker"]
    # The sync loop has nothing to pull in these benchmarks: let it look rarely.
    env = billsync_env(database_url, BILLSYNC_SYNC_POLL_SECONDS="3600", **extra)
    with started("billsync worker", command, env) as process:
        yield process


@dataclass(frozen=True)
class Tenant:
    """An organization with one connected integration, and how to reach it."""

    organization_id: str
    integration_id: str
    admin_token: str
    webhook_secret: str

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.integration_id}"


def new_tenant(
    engine: Engine, settings: Settings, modules: Sequence[str] = ("projects", "tasks", "timesheets")
) -> Tenant:
    """An organization and an active integration syncing ``modules``, made in-process."""
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        organization, token = create_organization(session, "bench")
        request = IntegrationCreate.model_validate(
            {"portal_id": f"portal-{uuid.uuid4().hex[:8]}", "modules": list(modules)}
        )
        created = connect(session, organization.id, request, settings=settings)
        assert created.webhook_secret is not None
        return Tenant(organization.id, created.integration.id, token, created.webhook_secret)


class QueueWatch:
    """billsync.apply seen from outside through one long-lived pika channel (a passive
    declare is a millisecond on it, so it can be polled closely)."""

    def __init__(self, url: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()

    def ready_and_consumers(self, queue: str = APPLY_QUEUE) -> tuple[int, int]:
        ok = self._channel.queue_declare(queue, passive=True).method
        return int(ok.message_count), int(ok.consumer_count)

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        """Queue ``messages`` as billsync publishes them (persistent; no confirms: the
        caller waits for the depth instead)."""
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        for message in messages:
            self._channel.basic_publish(
                EVENTS_EXCHANGE,
                routing_key(message),
                message.model_dump_json().encode(),
                properties,
            )

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()


def reset_queues(settings: Settings) -> None:
    """billsync's queues deleted and declared again, empty."""
    from tests.support import BrokerProbe
    from worker.messaging.publisher import Publisher
    from worker.messaging.topology import build_topology

    BrokerProbe(settings.broker_url).reset()
    publisher = Publisher(settings, build_topology(settings))
    try:
        publisher.declare_topology()
    finally:
        publisher.close()


def settled(engine: Engine, integration_id: str) -> int:
    """Events the worker applied or refused for the integration (its activity tally)."""
    with engine.connect() as connection:
        total = connection.scalar(
            select(
                func.coalesce(
                    func.sum(IntegrationActivity.applied + IntegrationActivity.refused), 0
                )
            ).where(IntegrationActivity.integration_id == integration_id)
        )
    return int(total or 0)


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` now, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def standalone(title: str, measure: Callable[[], list[Any]]) -> None:
    """A row's script run by itself: measure, give the vhost back, print its table."""
    from tests.benchmarks.report import print_rows

    try:
        rows = measure()
    finally:
        servers.stop_all()
    print_rows(rows, title)
