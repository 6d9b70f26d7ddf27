"""Initial-sync throughput against reading the same pages without applying them.

    python -m tests.benchmarks.bench_pull [--projects 200]

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
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import create_engine

from schemas import Module
from schemas.api import IntegrationCreate
from tests.benchmarks.common import (
    ROOT,
    billsync_env,
    broker_url,
    end_with_parent,
    standalone,
    started,
    temporary_database,
)
from tests.benchmarks.report import FULL, Figure, Row, Target
from tests.support import BrokerProbe, wait_until
from worker.accounts.organizations import create_organization
from worker.db import SyncRun, make_sessionmaker, migrate
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
TARGET = 5000  # records/s


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


@contextmanager
def fake_portal(projects: int) -> Iterator[dict[str, Any]]:
    """The fake portal, seeded, served by a process of its own on a free port; the pull
    source that reads it."""
    command = [sys.executable, "-m", "tests.fake_portal", "serve", "--seed", "--port", "0"]
    command += ["--projects", str(projects), "--tasks-per-project", "10", "--logs-per-task", "10"]
    portal = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=end_with_parent,
    )
    try:
        assert portal.stdout is not None
        first = portal.stdout.readline()  # "base URL:     http://127.0.0.1:<port>"
        if not first.startswith("base URL:"):
            raise RuntimeError(f"the fake portal did not start: {first!r}")
        base_url = first.split(":", 1)[1].strip()
        wait_until(lambda: _answers(base_url), timeout=300, interval=0.1)
        yield {"base_url": base_url, "credentials": {"access_token": "fake-token"}}
    finally:
        portal.terminate()
        portal.wait(30)


def measure(projects: int) -> list[Row]:
    with fake_portal(projects) as source, temporary_database() as database_url:
        figures, records = _measure(source, database_url)
    return [
        Row(
            key="pull",
            what=f"initial pull of {projects:,} projects ({records:,} records) from the "
            "fake portal, applied by `billsync worker`",
            figures=[
                Figure("initial_rps", "", figures["initial"], "records/s"),
                Figure("read_rps", "reading the pages only:", figures["read"], "records/s", True),
            ],
            targets=[Target("", figures["initial"], ">=", TARGET, "records/s")],
            ratios={"/ read": figures["initial"] / figures["read"]},
            params={"projects": projects, "records": records},
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=FULL.pull_projects)
    args = parser.parse_args()
    standalone("initial pull", lambda: measure(args.projects))


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/_fake/records/users", timeout=1).is_success
    except httpx.HTTPError:
        return False


def _measure(source: dict[str, Any], database_url: str) -> tuple[dict[str, float], int]:
    # Throughput without Zoho's request budget (bench_pull_calls models that budget).
    settings = Settings(
        database_url=database_url,
        broker_url=broker_url(),
        log_level="WARNING",
        credential_key=Fernet.generate_key().decode(),
        portal_rate_calls=UNPACED,
        portal_allowed_hosts="127.0.0.1",  # the fake portal this benchmark serves
    )
    token = StaticToken(source["credentials"]["access_token"])
    begun = time.perf_counter()
    with PortalClient(source["base_url"], PORTAL_ID, token) as client:
        records = read_everything(client, settings.pull_history_days)
    read_rate = records / (time.perf_counter() - begun)

    engine = create_engine(settings.database_url)
    migrate.upgrade_schema(engine)
    sessions = make_sessionmaker(engine)
    probe = BrokerProbe(settings.broker_url)
    probe.reset()
    publisher = Publisher(settings, build_topology(settings))
    publisher.declare_topology()
    env = billsync_env(
        settings.database_url,
        BILLSYNC_CREDENTIAL_KEY=settings.credential_key.get_secret_value(),
        BILLSYNC_PORTAL_RATE_CALLS=str(UNPACED),
        # Its sync loop looks once, at start, before the run exists: this process runs it.
        BILLSYNC_SYNC_POLL_SECONDS="3600",
    )
    command = [sys.executable, "-m", "worker.cli", "worker"]
    with ExitStack() as running:
        worker = running.enter_context(started("billsync worker", command, env))
        running.callback(publisher.close)
        running.callback(engine.dispose)

        def consuming() -> bool:
            worker.check()
            return probe.consumers() > 0

        wait_until(consuming, timeout=60)
        with sessions.begin() as session:
            organization, _token = create_organization(session, "bench")
            request = IntegrationCreate.model_validate(
                {"portal_id": PORTAL_ID, "modules": ["timesheets"], "source": source}
            )
            connect(session, organization.id, request, settings=settings)
        runner = PullRunner(sessions, publisher, settings)
        begun = time.perf_counter()
        result = runner.run_next()
        elapsed = time.perf_counter() - begun
        if result is None or result[1] != "succeeded":
            with sessions() as session:
                run = session.get(SyncRun, result[0]) if result else None
            raise RuntimeError(
                f"the initial sync did not succeed: {result}: {run.error if run else ''}\n"
                f"the worker said: {worker.output()}"
            )
    return {"read": read_rate, "initial": records / elapsed}, records


if __name__ == "__main__":
    main()
