"""Initial-sync throughput against reading the same pages without applying them.

    python -m tests.benchmarks.bench_pull [--projects 100]

A fake portal of N projects × 10 tasks × 10 logs per task (the target names 1k
projects, 10k tasks, 100k logs: ``--projects 1000``) is served over HTTP by a
process of its own, as a real portal would be. Two figures, records/s, in the
same run:
  read        the portal client reading every page the pull reads (the baseline)
  initial     a whole initial sync: read, convert, publish with confirms to
              RabbitMQ, applied into PostgreSQL by `billsync worker` in a second
              process, watermarks advanced after commit
The target is ≥ 5,000 records/s for the initial sync.
Needs PostgreSQL and RabbitMQ (found as the test suite finds them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine

from schemas import Module
from schemas.api import IntegrationCreate
from tests import servers
from tests.benchmarks.common import temporary_database
from tests.support import BrokerProbe, wait_until
from worker.accounts.organizations import create_organization
from worker.db import make_sessionmaker, migrate
from worker.integrations.lifecycle import connect
from worker.messaging.publisher import Publisher
from worker.messaging.topology import build_topology
from worker.portal.auth import StaticToken
from worker.portal.client import PortalClient
from worker.pull.reader import time_windows
from worker.pull.runner import PullRunner
from worker.settings import Settings
from worker.sync import spec_for

PORTAL_ID = "portal-1"
UNPACED = 10**9


def read_everything(client: PortalClient, history_days: int) -> int:
    """Every page an initial sync reads, read and counted, nothing applied."""
    records = 0
    project_ids = []
    for page in client.projects():
        for project in page:
            client.project_clients(str(project["id"]))
            project_ids.append(str(project["id"]))
        records += len(page)
    records += sum(len(page) for page in client.users())
    today = datetime.now(UTC).date()
    for project_id in project_ids:
        found = {}
        for module in ("milestones", "tasklists", "tasks", "bugs"):
            paths = spec_for(Module(module)).paths
            found[module] = sum(len(page) for page in client.children(paths, project_id))
        records += sum(found.values())
        # As the pull does: task and issue logs only where there are tasks and issues.
        log_types = [t for t, m in (("task", "tasks"), ("issue", "bugs")) if found[m]]
        for first, last in time_windows(today - timedelta(days=history_days), today):
            pages = client.timelogs(
                project_id, first, last, by_modified_time=False, log_types=[*log_types, "general"]
            )
            records += sum(len(page) for page in pages)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=100)
    args = parser.parse_args()

    port = 18790
    portal = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_portal", "serve", "--seed", "--port", str(port)]
        + ["--projects", str(args.projects), "--tasks-per-project", "10", "--logs-per-task", "10"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    source = {"base_url": f"http://127.0.0.1:{port}", "credentials": {"access_token": "fake-token"}}
    try:
        wait_until(lambda: _answers(source["base_url"]), timeout=300, interval=0.5)
        with temporary_database() as database_url:
            figures, records = _measure(source, database_url)
    finally:
        portal.terminate()
        portal.wait(30)
        servers.stop_all()

    print(f"initial sync of {args.projects} projects ({records:,} records read)")
    for label, rate in figures.items():
        print(f"  {label:<8} {rate:>8,.0f} records/s")
    print(f"  initial / read = {figures['initial'] / figures['read']:.2f}x")
    print(f"  initial {'meets' if figures['initial'] >= 5000 else 'misses'} 5,000 records/s")


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/_fake/records/users", timeout=1).is_success
    except httpx.HTTPError:
        return False


def _measure(source: dict[str, Any], database_url: str) -> tuple[dict[str, float], int]:
    # Throughput without Zoho's request budget (bench_pull_calls models that budget).
    settings = Settings(
        database_url=database_url,
        broker_url=servers.rabbitmq_url(),
        log_level="WARNING",
        credential_key=Fernet.generate_key().decode(),
        portal_rate_calls=UNPACED,
        portal_allowed_hosts="127.0.0.1",  # the fake portal this benchmark serves
    )
    token = StaticToken(source["credentials"]["access_token"])
    started = time.perf_counter()
    with PortalClient(source["base_url"], PORTAL_ID, token) as client:
        records = read_everything(client, settings.pull_history_days)
    read_rate = records / (time.perf_counter() - started)

    engine = create_engine(settings.database_url)
    migrate.upgrade_schema(engine)
    sessions = make_sessionmaker(engine)
    probe = BrokerProbe(settings.broker_url)
    probe.reset()
    publisher = Publisher(settings, build_topology(settings))
    publisher.declare_topology()
    env = {
        **os.environ,
        "BILLSYNC_DATABASE_URL": settings.database_url,
        "BILLSYNC_BROKER_URL": settings.broker_url,
        "BILLSYNC_LOG_LEVEL": "WARNING",
        "BILLSYNC_CREDENTIAL_KEY": settings.credential_key.get_secret_value(),
        "BILLSYNC_PORTAL_RATE_CALLS": str(UNPACED),
        # Its sync loop looks once, at start, before the run exists: this process runs it.
        "BILLSYNC_SYNC_POLL_SECONDS": "3600",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "worker"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: probe.consumers() > 0, timeout=60)
        with sessions.begin() as session:
            organization, _token = create_organization(session, "bench")
            request = IntegrationCreate.model_validate(
                {"portal_id": PORTAL_ID, "modules": ["timesheets"], "source": source}
            )
            connect(session, organization.id, request, settings=settings)
        runner = PullRunner(sessions, publisher, settings)
        started = time.perf_counter()
        result = runner.run_next()
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(30)
        publisher.close()
        engine.dispose()
    if result is None or result[1] != "succeeded":
        raise SystemExit(f"the initial sync did not succeed: {result}")
    return {"read": read_rate, "initial": records / elapsed}, records


if __name__ == "__main__":
    main()
