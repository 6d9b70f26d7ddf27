"""Pull sync: run a sync run, emitting the SAME events as webhooks.

A run reads the portal module by module through ``worker.pull.reader`` (projects
with their primary clients → users → milestones and task lists → tasks → bugs →
timesheets, the registry's order), page by page, and publishes each page as
ordinary change events (source ``pull``) into ``billsync.events``, where the one
consumer applies them under the one set of rules. The runner claims the run,
publishes, saves progress (heartbeats, counts) and moves the watermarks; it owns
the database and the broker, the reader the portal.

Watermarks. Each module's watermark is the newest source modification a pull
read and saw applied; a run reads from ``watermark - overlap``. A module's
watermark advances only after every event it emitted is committed (found in the
processed-event ledger), so a run killed midway resumes each module from what
is really in the database. Projects are settled first (what else is read depends
on which projects are synced); the other modules are read while the worker
applies them and settled together at the end. Webhooks never move watermarks: a lost webhook must
not hide an older change from the next pull.

Deletes. A run that is not the first asks the reader which live local records the
portal no longer has, and emits a ``deleted`` event for each.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any

from sqlalchemy import delete, null, select, text
from sqlalchemy.orm import Session, sessionmaker

from schemas import Module, QueueMessage
from worker.db import (
    Integration,
    ParkedEvent,
    ProcessedEvent,
    SyncCursor,
    SyncError,
    SyncRun,
    utcnow,
)
from worker.errors import BillsyncError, Conflict, NotFound, Unavailable
from worker.integrations import (
    RunKind,
    RunOutcome,
    claim,
    finish,
    heartbeat,
    may_pull,
    pull_source,
)
from worker.messaging import Publisher
from worker.portal import (
    AccessToken,
    PortalClient,
    access_token_for,
    api_base_url,
    budget_for,
)
from worker.pull.reader import Gone, PortalReader, Pulled, module_counts
from worker.settings import Settings
from worker.sync import MODULES, ModuleSpec, spec_for

__all__ = [
    "ClientFactory",
    "ProgressListener",
    "PullCancelled",
    "PullRunner",
    "PullStalled",
]

log = logging.getLogger(__name__)

PUBLISH_BATCH = 500  # messages per confirm wait
CHECKPOINT_SECONDS = 0.5  # how often progress is saved (and a pause noticed)
WAIT_CHUNK = 1000  # event ids per "are they applied yet?" query
ANALYZE_EVERY = 10_000  # events published between two ANALYZEs of the growing tables

ClientFactory = Callable[[str, dict[str, Any]], PortalClient]
ProgressListener = Callable[[int, dict[str, dict[str, Any]]], None]


class PullCancelled(Conflict):
    """The integration was disabled or deleted while the pull ran."""


class PullStalled(Unavailable):
    """Emitted events stopped being applied (worker down, or events dead-lettered)."""


@dataclass
class _Target:
    run_id: int
    kind: str
    integration_id: str
    portal_id: str
    source: dict[str, Any] | None
    modules: frozenset[str]
    watermarks: dict[str, datetime | None]
    started: datetime = field(default_factory=utcnow)


class PullRunner:
    """Executes sync runs: claims them, pulls, records the outcome in the history."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        settings: Settings,
        *,
        client_factory: ClientFactory | None = None,
        on_progress: ProgressListener | None = None,
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._settings = settings
        self._client_factory = client_factory or self._http_client
        self._on_progress = on_progress
        self._published = self._analyzed_at = 0
        self._tokens: dict[str, AccessToken] = {}

    def run_next(self, run_id: int | None = None) -> tuple[int, str] | None:
        """Claim a pending run (the given one, else the oldest) and execute it."""
        with self._sessions.begin() as session:
            run = claim(session, run_id)
            claimed = run.id if run is not None else None
        if claimed is None:
            return None
        return claimed, self.execute(claimed)

    def execute(self, run_id: int) -> str:
        """Pull for a claimed run; returns its outcome (also written to the history)."""
        target = self._target(run_id)
        pull = _Run(self, target)
        outcome, error = RunOutcome.SUCCEEDED, None
        try:
            if target.kind == RunKind.RESUME:
                self._republish_parked(target.integration_id)
            if target.source is not None:
                # Decrypted here, inside the run: a changed key fails the run with its message.
                source = pull_source(target.source, self._settings)
                assert source is not None
                with self._client_factory(target.portal_id, source) as client:
                    pull.run(client)
        except PullCancelled as exc:
            outcome, error = RunOutcome.CANCELLED, str(exc)
        except BillsyncError as exc:  # raised on purpose: its message says it all
            outcome, error = RunOutcome.FAILED, f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("sync run crashed", extra={"run_id": run_id})
            outcome, error = RunOutcome.FAILED, f"{type(exc).__name__}: {exc}"
        with self._sessions.begin() as session:
            finish(session, run_id, outcome, pull.counts, error)
        log.info(
            "sync run finished",
            extra={
                "run_id": run_id,
                "integration_id": target.integration_id,
                "kind": target.kind,
                "outcome": outcome,
                "counts": pull.counts,
                "error": error,
            },
        )
        return outcome

    # -- pieces the pull uses ------------------------------------------------------

    def _http_client(self, portal_id: str, source: dict[str, Any]) -> PortalClient:
        s = self._settings
        # One access token and one request budget per Zoho credential for the life of
        # the worker: runs reuse a token until it expires instead of minting one each.
        key = _credential_key(source)
        token = self._tokens.get(key)
        if token is None:
            token = self._tokens[key] = access_token_for(source)
        return PortalClient(
            api_base_url(source),
            portal_id,
            token,
            budget=budget_for(key, s.portal_rate_calls, s.portal_rate_window_seconds),
            per_page=s.pull_per_page,
            max_retries=s.portal_max_retries,
            backoff_seconds=s.portal_backoff_seconds,
            timeout_seconds=s.portal_timeout_seconds,
        )

    def _target(self, run_id: int) -> _Target:
        with self._sessions() as session:
            run = session.get(SyncRun, run_id)
            if run is None:
                raise NotFound(f"no sync run {run_id}")
            integration = session.get(Integration, run.integration_id)
            assert integration is not None
            cursors = session.scalars(
                select(SyncCursor).where(SyncCursor.integration_id == integration.id)
            )
            return _Target(
                run_id=run.id,
                kind=run.kind,
                integration_id=integration.id,
                portal_id=integration.portal_id,
                source=dict(integration.source) if integration.source else None,
                modules=frozenset(integration.modules or ()),
                watermarks={c.module: c.watermark for c in cursors},
            )

    def _republish_parked(self, integration_id: str) -> None:
        """Events kept while the integration was disabled go back to the queue first.

        Each chunk is deleted only after the broker confirmed its republish.
        """
        while True:
            with self._sessions.begin() as session:
                parked = session.scalars(
                    select(ParkedEvent)
                    .where(ParkedEvent.integration_id == integration_id)
                    .order_by(ParkedEvent.parked_at)
                    .limit(500)
                ).all()
                if not parked:
                    return
                messages = [QueueMessage.model_validate(p.message) for p in parked]
                self._publisher.publish(messages)
                session.execute(
                    delete(ParkedEvent).where(
                        ParkedEvent.integration_id == integration_id,
                        ParkedEvent.event_id.in_([p.event_id for p in parked]),
                    )
                )

    def publish(self, messages: list[QueueMessage]) -> None:
        if messages:
            self._publisher.publish(messages)
            self._published += len(messages)
            if self._published - self._analyzed_at >= ANALYZE_EVERY:
                self._analyze()

    def _analyze(self) -> None:
        """Refresh PostgreSQL's statistics of the tables a bulk load grows.

        Autovacuum analyzes a table once a minute at best; meanwhile the planner
        takes a fast-growing table for empty and turns index lookups of the apply
        into scans (measured: 29 ms instead of 1.5 ms per error-summary lookup at
        25k rows). A pull knows it is loading in bulk, so it says so.
        """
        self._analyzed_at = self._published
        with self._sessions() as session:
            if session.get_bind().dialect.name != "postgresql":
                return
            grown: list[Any] = [*(s.model for s in MODULES.values()), SyncError, ProcessedEvent]
            session.execute(text("ANALYZE " + ", ".join(m.__tablename__ for m in grown)))
            session.commit()

    def checkpoint(self, target: _Target, counts: dict[str, dict[str, Any]]) -> None:
        """Save progress for the history and status; stop if the integration was paused."""
        with self._sessions.begin() as session:
            heartbeat(session, target.run_id, counts)
            integration = session.get(Integration, target.integration_id)
            if not may_pull(integration):
                raise PullCancelled("the integration was disabled or deleted during the pull")
        if self._on_progress is not None:
            self._on_progress(target.run_id, counts)

    def wait_committed(
        self, target: _Target, event_ids: list[str], counts: dict[str, dict[str, Any]]
    ) -> None:
        """Block until every event id is in the processed-event ledger.

        Ids are checked a chunk at a time in publish order: the queue is (nearly)
        FIFO, so the oldest chunk completes first, and each poll is one small query
        rather than a scan of everything still pending.
        """
        timeout = self._settings.pull_commit_timeout_seconds
        for start in range(0, len(event_ids), WAIT_CHUNK):
            missing = set(event_ids[start : start + WAIT_CHUNK])
            deadline = time.monotonic() + timeout
            pause = 0.01
            while missing:
                with self._sessions() as session:
                    found = set(
                        session.scalars(
                            select(ProcessedEvent.event_id).where(
                                ProcessedEvent.integration_id == target.integration_id,
                                ProcessedEvent.event_id.in_(missing),
                            )
                        )
                    )
                if found:
                    missing -= found
                    deadline = time.monotonic() + timeout
                elif time.monotonic() > deadline:
                    raise PullStalled(
                        f"{len(event_ids) - start} pulled events were not applied within "
                        f"{timeout:.0f}s; is a worker running? (see the dead letters)"
                    )
                if missing:
                    self.checkpoint(target, counts)
                    time.sleep(pause)
                    pause = min(pause * 2, 0.5)

    def advance(self, target: _Target, module: Module, newest: datetime | None) -> None:
        """Move the module's watermark to what this run read and saw applied."""
        with self._sessions.begin() as session:
            cursor = session.get(SyncCursor, (target.integration_id, module.value))
            if cursor is None:
                cursor = SyncCursor(
                    integration_id=target.integration_id, module=module.value, synced=0
                )
                session.add(cursor)
            if newest is not None and (cursor.watermark is None or newest > cursor.watermark):
                cursor.watermark = newest
            cursor.last_sync_at = utcnow()

    def live_records(
        self, integration_id: str, spec: ModuleSpec
    ) -> dict[tuple[str | None, str], datetime | None]:
        """{(project source id, source id): version} of live local records of the module."""
        table: Any = spec.model
        project = table.project_source_id if spec.per_project else None
        columns = [project if project is not None else null(), table.source_id]
        with self._sessions() as session:
            rows = session.execute(
                select(*columns, table.source_modified_at).where(
                    table.integration_id == integration_id, table.deleted.is_(False)
                )
            )
            return {(row[0], row[1]): row[2] for row in rows}

    def log_types(self, integration_id: str, spec: ModuleSpec) -> dict[str, str]:
        """{time log source id: its portal log type (task, issue, general)}."""
        table: Any = spec.model
        with self._sessions() as session:
            rows = session.execute(
                select(table.source_id, table.task_source_id, table.bug_source_id).where(
                    table.integration_id == integration_id, table.deleted.is_(False)
                )
            )
            return {row[0]: "task" if row[1] else "issue" if row[2] else "general" for row in rows}

    def local_log_dates(self, integration_id: str, spec: ModuleSpec, project_id: str) -> list[date]:
        table: Any = spec.model
        with self._sessions() as session:
            dates = session.scalars(
                select(table.log_date).where(
                    table.integration_id == integration_id,
                    table.project_source_id == project_id,
                    table.deleted.is_(False),
                )
            )
            return [d for d in dates if d is not None]

    @property
    def settings(self) -> Settings:
        return self._settings


class _Run:
    """One run: reads through a ``PortalReader``, publishes what it read, settles the
    watermarks, and emits the deletes the reader found."""

    def __init__(self, runner: PullRunner, target: _Target) -> None:
        self.runner = runner
        self.target = target
        self.settings = runner.settings
        self.counts: dict[str, dict[str, Any]] = {}
        self.projects_before = set(self._live_projects())
        self.outbox: list[QueueMessage] = []
        self.next_checkpoint = 0.0

    def run(self, client: PortalClient) -> None:
        self.reader = PortalReader(
            client,
            self.settings,
            modules=self.target.modules,
            watermarks=self.target.watermarks,
            started=self.target.started,
            counts=self.counts,
        )
        unsettled: list[tuple[Module, list[str], datetime | None]] = []
        for spec in self.reader.specs():
            unsettled.append((spec.module, *self._pull(spec)))
            if spec.module is Module.PROJECTS:
                # Which projects are synced decides what else is read: wait for them.
                self._settle(unsettled)
                self.reader.know_projects(self._live_projects(), self.projects_before)
        # The rest is read while the worker applies it; watermarks move once it is in.
        self._settle(unsettled)
        if self.target.kind != RunKind.INITIAL and self.settings.pull_detect_deletes:
            self._find_deletes()

    def _settle(self, unsettled: list[tuple[Module, list[str], datetime | None]]) -> None:
        """Wait until the modules' events are applied, then advance their watermarks."""
        for module, emitted, newest in unsettled:
            self.runner.wait_committed(self.target, emitted, self.counts)
            self.runner.advance(self.target, module, newest)
        unsettled.clear()

    def _pull(self, spec: ModuleSpec) -> tuple[list[str], datetime | None]:
        """Read and publish the module; the event ids emitted and the newest version read."""
        counts = module_counts(self.counts, spec.module)
        emitted: list[str] = []
        newest: datetime | None = None
        for page in self.reader.read(spec):
            messages = [self._message(p) for p in page]
            for message in messages:
                version = message.event.modified_at
                newest = version if newest is None or version > newest else newest
            self._send(messages)
            emitted.extend(m.event_id for m in messages)
            counts["emitted"] += len(messages)
        self._send([], flush=True)
        return emitted, newest

    def _message(self, pulled: Pulled) -> QueueMessage:
        return QueueMessage(
            event_id=pulled.event_id,
            integration_id=self.target.integration_id,
            source="pull",
            event=pulled.event,
        )

    def _send(self, messages: list[QueueMessage], *, flush: bool = False) -> None:
        """Publish in batches of PUBLISH_BATCH (one confirm wait each); save progress
        at most every CHECKPOINT_SECONDS (and at every flush)."""
        self.outbox.extend(messages)
        if flush or len(self.outbox) >= PUBLISH_BATCH:
            self.runner.publish(self.outbox)
            self.outbox = []
        now = time.monotonic()
        if flush or now >= self.next_checkpoint:
            self.counts["portal"] = self.reader.portal_calls()
            self.runner.checkpoint(self.target, self.counts)
            self.next_checkpoint = now + CHECKPOINT_SECONDS

    def _live_projects(self) -> set[str]:
        live = self.runner.live_records(self.target.integration_id, spec_for(Module.PROJECTS))
        return {s for _, s in live}

    # -- deletes -------------------------------------------------------------------

    def _find_deletes(self) -> None:
        """Emit ``deleted`` for live local records the portal no longer has."""
        integration_id = self.target.integration_id
        projects: set[str | None] = {None}
        for spec in self.reader.delete_checked():
            local = {
                key: version
                for key, version in self.runner.live_records(integration_id, spec).items()
                if key[0] in projects  # a deleted project's invoiced logs stay as they are
            }
            log_types = self.runner.log_types(integration_id, spec) if spec.windowed else {}
            log_dates = partial(self.runner.local_log_dates, integration_id, spec)
            self._emit_deletes(spec, self.reader.gone(spec, local, log_types, log_dates))
            if spec.module is Module.PROJECTS:
                projects = set(self._live_projects())

    def _emit_deletes(self, spec: ModuleSpec, gone: list[Gone]) -> None:
        if not gone:
            return
        messages = [self._message(p) for p in self.reader.deleted(spec, gone)]
        self.runner.publish(messages)
        module_counts(self.counts, spec.module)["deleted"] += len(messages)
        self.runner.checkpoint(self.target, self.counts)
        self.runner.wait_committed(self.target, [m.event_id for m in messages], self.counts)


def _credential_key(source: dict[str, Any]) -> str:
    """A name for the credential (a hash: the secrets themselves are not kept around)."""
    credentials = source.get("credentials") or {}
    secret = credentials.get("refresh_token") or credentials.get("access_token") or ""
    text = f"{credentials.get('client_id', '')}:{secret}"
    return hashlib.sha256(text.encode()).hexdigest()
