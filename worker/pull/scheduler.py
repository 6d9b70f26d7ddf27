"""The worker's sync loop: runs requested pulls, takes over dead ones, reconciles, and
keeps the processed-event ledger's partitions made ahead (``worker.db.partitions``).

Runs in a thread beside the consumer (``billsync worker`` and ``billsync run``).
Several workers may run it: a run is claimed by one of them (SKIP LOCKED).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from worker.db import Integration, IntegrationState, ensure_ledger_partitions, utcnow
from worker.integrations import RunKind, recover_stale, request_run
from worker.pull.runner import PullRunner
from worker.settings import Settings

__all__ = ["SyncScheduler"]

log = logging.getLogger(__name__)

# How often the loop makes sure the ledger's coming weeks have partitions (made weeks
# ahead, so an hour is plenty; when every week exists it is a catalog read).
PARTITIONS_EVERY_SECONDS = 3600.0


class SyncScheduler(threading.Thread):
    def __init__(
        self,
        runner: PullRunner,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        """``clock`` (monotonic seconds) times the reconciliations; ``now`` (aware wall
        time, what heartbeats are written in) finds the runs whose runner died. Tests
        inject both, and move them instead of waiting."""
        super().__init__(name="billsync-sync", daemon=True)
        self._runner = runner
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._now = now
        self._stopping = threading.Event()
        interval = settings.reconcile_interval_seconds
        self._next_reconcile = clock() + interval if interval else None
        self._next_partitions = clock()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("sync loop iteration failed; retrying")
            self._stopping.wait(self._settings.sync_poll_seconds)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.join(timeout)

    def tick(self) -> None:
        """One pass: recover dead runs, request due reconciliations, run what is pending."""
        stale_after = timedelta(seconds=self._settings.sync_stale_seconds)
        with self._sessions.begin() as session:
            for run in recover_stale(session, stale_after, now=self._now()):
                log.warning("resuming a sync whose runner died", extra={"run_id": run.id})
        if self._clock() >= self._next_partitions:
            self._ensure_partitions()
            self._next_partitions = self._clock() + PARTITIONS_EVERY_SECONDS
        if self._next_reconcile is not None and self._clock() >= self._next_reconcile:
            self._request_reconciliations()
            self._next_reconcile = self._clock() + self._settings.reconcile_interval_seconds
        while not self._stopping.is_set() and self._runner.run_next() is not None:
            pass

    def _ensure_partitions(self) -> None:
        """The ledger's weeks ahead (PostgreSQL); a failure only waits for the next try:
        meanwhile claims land in the default partition, and `db prune` makes them too."""
        try:
            with self._sessions.begin() as session:
                created = ensure_ledger_partitions(session.connection(), self._now())
        except Exception:
            log.warning("could not create the ledger's partitions ahead", exc_info=True)
            return
        if created:
            log.info("ledger partitions created", extra={"fields": {"partitions": created}})

    def _request_reconciliations(self) -> None:
        """A quiet pull for every active integration with a source, to close webhook gaps."""
        with self._sessions.begin() as session:
            integrations = session.scalars(
                select(Integration).where(
                    Integration.status == IntegrationState.ACTIVE, Integration.deleted_at.is_(None)
                )
            ).all()
            for integration in integrations:
                if integration.source:  # JSON null and SQL NULL alike
                    request_run(session, integration, RunKind.RECONCILIATION)
