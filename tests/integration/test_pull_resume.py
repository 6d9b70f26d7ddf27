"""A pull killed midway resumes from its committed watermarks (real process, real HTTP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import CREDENTIAL_KEY, FAKE_PORTAL_HOSTS, UNTHROTTLED, Org
from tests.fake_portal import FakePortal
from tests.integration.pull_harness import Pulling, expected_state
from tests.support import wait_until
from worker.db import SyncCursor, SyncRun, utcnow
from worker.messaging.publisher import Publisher
from worker.pull.runner import PullRunner
from worker.pull.scheduler import SyncScheduler
from worker.settings import Settings


def slowed(app: Any, seconds: float) -> Callable[..., Any]:
    """WSGI middleware: every portal request takes ``seconds`` longer."""

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        time.sleep(seconds)
        return app(environ, start_response)

    return wsgi


def test_a_pull_killed_midway_resumes_from_its_watermarks(
    client: FlaskClient,
    org: Org,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    settings: Settings,
    database_url: str,
    broker_url: str,
    tmp_path: Path,
    worker: None,
) -> None:
    portal = FakePortal()
    portal.seed(projects=12, tasks_per_project=3, logs_per_task=2, users=3, without_client=1)
    portal.app.wsgi_app = slowed(portal.app.wsgi_app, 0.01)  # type: ignore[method-assign]
    with portal.serve() as url:
        pulling = Pulling(portal, client, org, pg_sessions, runner=None)  # type: ignore[arg-type]
        created = pulling.connect(
            source={"base_url": url, "credentials": {"access_token": portal.access_token}}
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")},
            "BILLSYNC_DATABASE_URL": database_url,
            "BILLSYNC_BROKER_URL": broker_url,
            "BILLSYNC_DATA_DIR": str(tmp_path),
            "BILLSYNC_CREDENTIAL_KEY": CREDENTIAL_KEY,
            "BILLSYNC_PORTAL_RATE_CALLS": str(UNTHROTTLED),
            "BILLSYNC_PORTAL_ALLOWED_HOSTS": FAKE_PORTAL_HOSTS,
        }
        puller = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "integration", "sync", created["id"]],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _watermark(pg_sessions, "projects"), timeout=30)
        finally:
            puller.send_signal(signal.SIGKILL)
            puller.wait(10)
        assert _watermark(pg_sessions, "timesheets") is None, "killed before the last module"
        portal.requests.clear()

        # Without overlap, a resume re-emits only what is at or after each watermark.
        resumer = PullRunner(
            pg_sessions, publisher, settings.model_copy(update={"pull_overlap_seconds": 0})
        )
        # The scheduler looks once the killed runner's last heartbeat is stale, by its clock.
        later = utcnow() + timedelta(seconds=settings.sync_stale_seconds + 1)
        SyncScheduler(resumer, pg_sessions, settings, now=lambda: later).tick()

        assert pulling.state() == expected_state(portal)
        with pg_sessions() as session:
            runs = session.scalars(select(SyncRun).order_by(SyncRun.id)).all()
        assert [(r.kind, r.outcome) for r in runs] == [
            ("initial", "interrupted"),
            ("resume", "succeeded"),
        ]
        projects = runs[1].counts["projects"]
        assert projects["emitted"] < projects["read"], "projects were taken from the watermark"
        assert pulling.api("GET", "/status").get_json()["status"] == "active"


def _watermark(sessions: sessionmaker[Session], module: str) -> Any:
    with sessions() as session:
        cursor = session.scalars(select(SyncCursor).where(SyncCursor.module == module)).first()
        return cursor.watermark if cursor else None
