"""Finding the real PostgreSQL and RabbitMQ the integration tests need.

Order: BILLSYNC_TEST_DATABASE_URL / BILLSYNC_TEST_BROKER_URL when set,
else a server on the local default port, else a testcontainers container when a
Docker engine runs, else the run FAILS with how to start one. Never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Callable
from typing import Any

START_POSTGRES = (
    "PostgreSQL is not reachable on 127.0.0.1:5432. Start it with\n"
    "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
    "(or `bash tests/run`, which starts or installs it), or point "
    "BILLSYNC_TEST_DATABASE_URL at a server."
)
START_RABBITMQ = (
    "RabbitMQ is not reachable on 127.0.0.1:5672. Start it with\n"
    "  rabbitmq-server -detached\n"
    "(or `bash tests/run`, which starts or installs it), or point "
    "BILLSYNC_TEST_BROKER_URL at a server."
)

_containers: list[Any] = []


class ServerMissing(RuntimeError):
    """A real server the tests need is not there; the message says how to start it."""


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    result = subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False)
    return result.returncode == 0


def _container(start: Callable[[], Any]) -> Any:
    container = start()
    _containers.append(container)
    return container


def postgres_server_url() -> str:
    """A URL of a PostgreSQL server where the tests may create databases."""
    url = os.environ.get("BILLSYNC_TEST_DATABASE_URL")
    if url:
        return url
    if _port_open("127.0.0.1", 5432):
        return "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    if _docker_engine():
        from testcontainers.postgres import PostgresContainer

        container = _container(lambda: PostgresContainer("postgres:16", driver="psycopg").start())
        return str(container.get_connection_url())
    raise ServerMissing(START_POSTGRES)


def rabbitmq_url() -> str:
    """An AMQP URL, on a fresh vhost when rabbitmqctl can make one."""
    url = os.environ.get("BILLSYNC_TEST_BROKER_URL")
    if url:
        return url
    if _port_open("127.0.0.1", 5672):
        vhost = _fresh_vhost()
        return (
            f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
            if vhost
            else "amqp://guest:guest@127.0.0.1:5672//"
        )
    if _docker_engine():
        from testcontainers.rabbitmq import RabbitMqContainer

        container = _container(lambda: RabbitMqContainer("rabbitmq:3.13").start())
        host = container.get_container_host_ip()
        port = container.get_exposed_port(5672)
        return f"amqp://guest:guest@{host}:{port}//"
    raise ServerMissing(START_RABBITMQ)


def _fresh_vhost() -> str | None:
    """A vhost of its own for this run, so a developer's billsync is not disturbed."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return None
    vhost = f"billsync-test-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run([ctl, "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        subprocess.run(
            [ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    _cleanups.append(
        lambda: subprocess.run(
            [ctl, "delete_vhost", vhost], capture_output=True, timeout=60, check=False
        )
    )
    return vhost


_cleanups: list[Callable[[], Any]] = []


def stop_all() -> None:
    for cleanup in _cleanups:
        cleanup()
    for container in _containers:
        container.stop()
