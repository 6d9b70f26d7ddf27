"""The processes of a production deployment, and the faults done to them.

A gunicorn gateway (`billsync gateway`) and 1–3 `billsync worker` processes reach
PostgreSQL and RabbitMQ through TCP proxies, so the run can cut either: ``reset``
closes every connection and refuses new ones, ``partition`` stops forwarding
without closing anything (a half-open network, the worse case). Workers are
killed with SIGKILL (no goodbye to the broker or the database) and started again.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from sqlalchemy.engine import make_url

from tests.support import wait_until
from tests.tcp_proxy import TcpProxy

__all__ = ["Deployment", "deployment"]


@dataclass
class Deployment:
    env: dict[str, str]
    gateway_url: str
    database: TcpProxy
    broker: TcpProxy
    rng: random.Random
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    gateway: subprocess.Popen[bytes] | None = None
    actions: list[str] = field(default_factory=list)

    def start_gateway(self, port: int) -> None:
        self.gateway = _spawn(["gateway", "--port", str(port), "--workers", "2"], self.env)
        wait_until(self._healthy, timeout=60, interval=0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.gateway_url}/healthz", timeout=1).is_success
        except httpx.HTTPError:
            return False

    def scale(self, count: int) -> None:
        """Run ``count`` workers (start or stop the newest ones gracefully)."""
        while len(self.workers) < count:
            self.workers.append(_spawn(["worker"], self.env))
        while len(self.workers) > count:
            worker = self.workers.pop()
            worker.send_signal(signal.SIGTERM)
            worker.wait(60)
        self.actions.append(f"workers={count}")

    def kill_one(self) -> None:
        """SIGKILL a worker mid-batch and start a new one in its place."""
        index = self.rng.randrange(len(self.workers))
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait(30)
        self.workers[index] = _spawn(["worker"], self.env)
        self.actions.append("kill")

    def cut(self, which: str, mode: str, seconds: float) -> None:
        """Cut the database or the broker (``reset`` or ``partition``) for a while."""
        proxy = self.database if which == "database" else self.broker
        if mode == "partition":
            proxy.partition()
        else:
            proxy.cut()
        time.sleep(seconds)  # the fault's length, not a wait for a result
        proxy.restore()
        self.actions.append(f"{which} {mode} {seconds:g}s")

    def stop(self) -> None:
        for process in [*self.workers, *([self.gateway] if self.gateway else [])]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, *([self.gateway] if self.gateway else [])]:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers.clear()


@contextmanager
def deployment(
    database_url: str, broker_url: str, credential_key: str, *, port: int, seed: int
) -> Iterator[Deployment]:
    """Proxies in front of both servers, and a gateway through them; workers via scale()."""
    db_url = make_url(database_url)
    broker = make_url(broker_url.replace("amqp://", "postgresql://", 1))
    with (
        TcpProxy((db_url.host or "127.0.0.1", db_url.port or 5432)) as database_proxy,
        TcpProxy((broker.host or "127.0.0.1", broker.port or 5672)) as broker_proxy,
    ):
        proxied_db = db_url.set(port=database_proxy.port).render_as_string(hide_password=False)
        proxied_broker = broker_url.replace(f":{broker.port or 5672}", f":{broker_proxy.port}", 1)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")},
            "BILLSYNC_DATABASE_URL": proxied_db,
            "BILLSYNC_BROKER_URL": proxied_broker,
            "BILLSYNC_CREDENTIAL_KEY": credential_key,
            "BILLSYNC_METRICS_PORT": "0",
            "BILLSYNC_LOG_LEVEL": "WARNING",
        }
        deployed = Deployment(
            env=env,
            gateway_url=f"http://127.0.0.1:{port}",
            database=database_proxy,
            broker=broker_proxy,
            rng=random.Random(seed),
        )
        try:
            deployed.start_gateway(port)
            yield deployed
        finally:
            deployed.stop()


def _spawn(arguments: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker.cli", *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
