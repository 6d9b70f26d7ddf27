"""Pull sync: read the portal module by module and emit the SAME events as webhooks.

One run reads projects (with their primary clients) → users → milestones and task
lists → tasks → bugs → timesheets, page by page, and publishes each page as
ordinary change events (source ``pull``) into ``billsync.events``, where the one
consumer applies them under the one set of rules. Event ids are deterministic
(``pull:<module>:<id>:<version>``), so re-reading an unchanged record is a
dedupe, and overlaps are harmless.

Watermarks. Each module's watermark is the newest source modification a pull
read and saw applied; a run reads from ``watermark - overlap``. A module's
watermark advances only after every event it emitted is committed (found in the
processed-event ledger), so a run killed midway resumes each module from what
is really in the database. Projects are settled first (what else is read depends
on which projects are synced); the other modules are read while the worker
applies them and settled together at the end. Webhooks never move watermarks: a lost webhook must
not hide an older change from the next pull.

The V3 API filters no listing by modification time, so projects, users,
milestones, task lists, tasks and issues are read whole and filtered here against
the watermark; children of a project that is new in the database are taken whatever
the watermark, since their changes may predate it. Time logs are the exception:
they are read in windows of at most six months, once per log type (task, issue,
general), by modification date from the watermark, or by log date over
``pull_history_days`` for a first read.

Records that do not fit the contract are counted as ``invalid`` per module, with
the fields that were missing or wrong (``invalid_fields``), in the run's history.

Deletes. Listings cannot show deletions, so a run that is not the first compares
the portal's ids with the live local records; each record missing from a listing
is confirmed with a GET (404) before a ``deleted`` event is emitted, so a record
that only moved between pages is never deleted.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, null, select, text
from sqlalchemy.orm import Session, sessionmaker

from schemas import Module, QueueMessage, event_adapter
from worker.db import (
    Integration,
    IntegrationState,
    ParkedEvent,
    ProcessedEvent,
    SyncCursor,
    SyncError,
    SyncRun,
    utcnow,
)
from worker.errors import BrokerUnavailable
from worker.integrations import (
    CANCELLED,
    FAILED,
    INITIAL,
    RESUME,
    SUCCEEDED,
    CredentialKeyError,
    claim,
    finish,
    heartbeat,
    pull_source,
)
from worker.messaging import Publisher
from worker.portal import (
    LOG_TYPES,
    AccessToken,
    CredentialsIncomplete,
    PortalClient,
    PortalError,
    PortalHostRefused,
    PortalUnavailable,
    access_token_for,
    api_base_url,
    budget_for,
    modified_at,
    pull_event,
    to_event_data,
)
from worker.settings import Settings
from worker.sync import MODELS

__all__ = [
    "ClientFactory",
    "ProgressListener",
    "PullCancelled",
    "PullRunner",
    "PullStalled",
    "time_windows",
]

log = logging.getLogger(__name__)

CHILDREN = (Module.MILESTONES, Module.TASKLISTS, Module.TASKS, Module.BUGS)
WINDOW = timedelta(days=183)  # the portal's longest time-log window (six months)
PUBLISH_BATCH = 500  # messages per confirm wait
CHECKPOINT_SECONDS = 0.5  # how often progress is saved (and a pause noticed)
WAIT_CHUNK = 1000  # event ids per "are they applied yet?" query
ANALYZE_EVERY = 10_000  # events published between two ANALYZEs of the growing tables

ClientFactory = Callable[[str, dict[str, Any]], PortalClient]
ProgressListener = Callable[[int, dict[str, dict[str, Any]]], None]


class PullCancelled(Exception):
    """The integration was disabled or deleted while the pull ran."""


class RecordOutsideContract(Exception):
    """A portal record misses a field the contract needs, or has one it cannot take."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


class PullStalled(Exception):
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
        pull = _Pull(self, target)
        outcome, error = SUCCEEDED, None
        try:
            if target.kind == RESUME:
                self._republish_parked(target.integration_id)
            if target.source is not None:
                # Decrypted here, inside the run: a changed key fails the run with its message.
                source = pull_source(target.source, self._settings)
                assert source is not None
                with self._client_factory(target.portal_id, source) as client:
                    pull.run(client)
        except PullCancelled as exc:
            outcome, error = CANCELLED, str(exc)
        except (
            PortalError,
            PortalUnavailable,
            PullStalled,
            BrokerUnavailable,
            CredentialKeyError,
            CredentialsIncomplete,
            PortalHostRefused,
        ) as exc:
            outcome, error = FAILED, f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("sync run crashed", extra={"run_id": run_id})
            outcome, error = FAILED, f"{type(exc).__name__}: {exc}"
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
                raise LookupError(f"no sync run {run_id}")
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
            grown: list[Any] = [*MODELS.values(), SyncError, ProcessedEvent]
            session.execute(text("ANALYZE " + ", ".join(m.__tablename__ for m in grown)))
            session.commit()

    def checkpoint(self, target: _Target, counts: dict[str, dict[str, Any]]) -> None:
        """Save progress for the history and status; stop if the integration was paused."""
        with self._sessions.begin() as session:
            heartbeat(session, target.run_id, counts)
            integration = session.get(Integration, target.integration_id)
            if (
                integration is None
                or integration.deleted_at
                or integration.status == IntegrationState.DISABLED
            ):
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
        self, integration_id: str, module: Module
    ) -> dict[tuple[str | None, str], datetime | None]:
        """{(project source id, source id): version} of live local records of ``module``."""
        table: Any = MODELS[module]
        project = table.project_source_id if module in (*CHILDREN, Module.TIMESHEETS) else None
        columns = [project if project is not None else null(), table.source_id]
        with self._sessions() as session:
            rows = session.execute(
                select(*columns, table.source_modified_at).where(
                    table.integration_id == integration_id, table.deleted.is_(False)
                )
            )
            return {(row[0], row[1]): row[2] for row in rows}

    def log_types(self, integration_id: str) -> dict[str, str]:
        """{time log source id: its portal log type (task, issue, general)}."""
        table: Any = MODELS[Module.TIMESHEETS]
        with self._sessions() as session:
            rows = session.execute(
                select(table.source_id, table.task_source_id, table.bug_source_id).where(
                    table.integration_id == integration_id, table.deleted.is_(False)
                )
            )
            return {row[0]: "task" if row[1] else "issue" if row[2] else "general" for row in rows}

    def local_log_dates(self, integration_id: str, project_id: str) -> list[date]:
        table: Any = MODELS[Module.TIMESHEETS]
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


class _Pull:
    """The reading half of one run (``PullRunner`` owns the database and broker)."""

    def __init__(self, runner: PullRunner, target: _Target) -> None:
        self.runner = runner
        self.target = target
        self.settings = runner.settings
        self.counts: dict[str, dict[str, Any]] = {}
        self.projects_before = set(self._live_projects())
        self.projects: list[str] = []
        self.projects_known = False
        self.new_projects: set[str] = set()
        self.gone_projects: set[str] = set()
        # Every (project, id) a whole listing returned, for finding deletes.
        self.listed: dict[Module, set[tuple[str | None, str]]] = {}
        self.whole: set[tuple[Module, str | None]] = set()
        self.outbox: list[QueueMessage] = []
        self.next_checkpoint = 0.0
        # {module: [projects read, portal calls they took]}, to estimate what is left.
        self.spent: dict[Module, list[int]] = {}
        self.parents: dict[Module, set[str | None]] = {}  # projects with tasks, with issues

    def run(self, client: PortalClient) -> None:
        self.client = client
        unsettled: list[tuple[Module, list[str], datetime | None]] = []
        for module in Module:
            if module is Module.TIMESHEETS and "timesheets" not in self.target.modules:
                continue
            unsettled.append((module, *self._pull(module)))
            if module is Module.PROJECTS:
                # Which projects are synced decides what else is read: wait for them.
                self._settle(unsettled)
                live = self._live_projects()
                self.projects = sorted(live)
                self.new_projects = live - self.projects_before
                self.projects_known = True
        # The rest is read while the worker applies it; watermarks move once it is in.
        self._settle(unsettled)
        if self.target.kind != INITIAL and self.settings.pull_detect_deletes:
            self._find_deletes()

    # -- reading -------------------------------------------------------------------

    def _settle(self, unsettled: list[tuple[Module, list[str], datetime | None]]) -> None:
        """Wait until the modules' events are applied, then advance their watermarks."""
        for module, emitted, newest in unsettled:
            self.runner.wait_committed(self.target, emitted, self.counts)
            self.runner.advance(self.target, module, newest)
        unsettled.clear()

    def _pull(self, module: Module) -> tuple[list[str], datetime | None]:
        """Read and publish ``module``; the event ids emitted and the newest version read."""
        counts = self._counts(module)
        emitted: list[str] = []
        newest: datetime | None = None
        for project_id, since, page in self._pages(module):
            messages = []
            for record in page:
                counts["read"] += 1
                self.listed.setdefault(module, set()).add((project_id, str(record.get("id"))))
                version = modified_at(record) or self.target.started
                if since is not None and version < since:
                    continue
                try:
                    message = self._message(module, record, project_id, version)
                except RecordOutsideContract as exc:
                    self._count_invalid(module, exc.fields)
                    continue
                messages.append(message)
                newest = version if newest is None or version > newest else newest
            self._send(messages)
            emitted.extend(m.event_id for m in messages)
            counts["emitted"] += len(messages)
        self._send([], flush=True)
        return emitted, newest

    def _send(self, messages: list[QueueMessage], *, flush: bool = False) -> None:
        """Publish in batches of PUBLISH_BATCH (one confirm wait each); save progress
        at most every CHECKPOINT_SECONDS (and at every flush)."""
        self.outbox.extend(messages)
        if flush or len(self.outbox) >= PUBLISH_BATCH:
            self.runner.publish(self.outbox)
            self.outbox = []
        now = time.monotonic()
        if flush or now >= self.next_checkpoint:
            self._count_calls()
            self.runner.checkpoint(self.target, self.counts)
            self.next_checkpoint = now + CHECKPOINT_SECONDS

    def _pages(self, module: Module) -> Iterator[tuple[str | None, datetime | None, list[Any]]]:
        """(project id, since, page) for every page of ``module`` this run reads."""
        since = self._since(module)
        if module is Module.PROJECTS:
            self.whole.add((module, None))
            for page in self.client.projects():
                yield None, since, page
        elif module is Module.USERS:
            for page in self.client.users():
                yield None, since, page
        else:
            for project_id in self.projects:
                if project_id in self.gone_projects:
                    continue
                own = None if project_id in self.new_projects else since
                if module is Module.TIMESHEETS:
                    pages = self._timelog_pages(project_id, own)
                else:
                    self.whole.add((module, project_id))
                    pages = self.client.children(module.value, project_id)
                calls = self.client.calls
                try:
                    for page in pages:
                        yield project_id, own, page
                    spent = self.spent.setdefault(module, [0, 0])
                    spent[0] += 1
                    spent[1] += self.client.calls - calls
                except PortalError as exc:
                    if exc.status != 404:
                        raise
                    # Deleted in the portal since we synced it (its webhook was lost):
                    # the deletes pass below confirms and emits it.
                    self.gone_projects.add(project_id)

    def _timelog_pages(self, project_id: str, since: datetime | None) -> Iterator[list[Any]]:
        today = datetime.now(UTC).date()
        if since is None:
            start = today - timedelta(days=self.settings.pull_history_days)
            windows = time_windows(start, today)
            self.whole.add((Module.TIMESHEETS, project_id))
        else:
            windows = time_windows(since.date(), today)
        log_types = self._log_types(project_id)
        for first, last in windows:
            yield from self.client.timelogs(
                project_id, first, last, by_modified_time=since is not None, log_types=log_types
            )

    def _log_types(self, project_id: str) -> list[str]:
        """The log types worth asking for: task and issue logs only where the project
        has tasks or issues (this run listed them whole). Each type is one call per
        window, and many projects have no issues at all."""
        if not self.parents:
            for module in (Module.TASKS, Module.BUGS):
                self.parents[module] = {p for p, _ in self.listed.get(module, set())}
        types = [
            log_type
            for log_type, module in (("task", Module.TASKS), ("issue", Module.BUGS))
            if project_id in self.parents[module]
        ]
        return [*types, "general"]

    def _message(
        self, module: Module, record: dict[str, Any], project_id: str | None, version: datetime
    ) -> QueueMessage:
        """The record as a queue message; RecordOutsideContract when it does not fit."""
        extra: dict[str, Any] = {}
        if module is Module.PROJECTS:
            extra["clients"] = self.client.project_clients(str(record["id"]))
        data = to_event_data(module.value, record, project_id, **extra)
        try:
            event = event_adapter.validate_python(pull_event(module.value, data, version))
        except ValidationError as exc:
            log.warning(
                "portal record does not fit the contract; skipped",
                extra={
                    "fields": {"module": module.value, "record_id": data.get("id")},
                    "error": str(exc),
                },
            )
            raise RecordOutsideContract(_error_fields(exc)) from exc
        return QueueMessage(
            event_id=f"pull:{module.value}:{data['id']}:{_ms(version)}",
            integration_id=self.target.integration_id,
            source="pull",
            event=event,
        )

    def _since(self, module: Module) -> datetime | None:
        watermark = self.target.watermarks.get(module.value)
        if watermark is None:
            return None
        return watermark - timedelta(seconds=self.settings.pull_overlap_seconds)

    def _counts(self, module: Module) -> dict[str, Any]:
        return self.counts.setdefault(
            module.value, {"read": 0, "emitted": 0, "invalid": 0, "deleted": 0}
        )

    def _count_calls(self) -> None:
        """Portal calls so far, whether the request budget is holding the pull back,
        and the time the calls still to make take at the budget (``seconds_left``)."""
        budget = self.client.budget
        calls_left = self._calls_left()
        seconds_left = None
        if calls_left is not None and budget is not None:
            seconds_left = round(budget.seconds_for(calls_left))
        self.counts["portal"] = {
            "calls": self.client.calls,
            "calls_left": calls_left,
            "throttled": bool(budget and budget.throttled),
            "seconds_left": seconds_left,
        }

    def _calls_left(self) -> int | None:
        """Calls the remaining (module, project) reads take: as many per project as the
        ones read so far took, and at least one per log type and window for logs.
        None until the projects to read are known."""
        if not self.projects_known:
            return None
        modules = [*CHILDREN]
        if "timesheets" in self.target.modules:
            modules.append(Module.TIMESHEETS)
        windows = len(
            time_windows(
                date.today() - timedelta(days=self.settings.pull_history_days), date.today()
            )
        )
        left = 0.0
        for module in modules:
            done, spent = self.spent.get(module, [0, 0])
            floor = len(LOG_TYPES) * windows if module is Module.TIMESHEETS else 1
            per_project = spent / done if done else floor
            left += max(len(self.projects) - done, 0) * per_project
        return round(left)

    def _count_invalid(self, module: Module, fields: list[str]) -> None:
        """One more invalid record, and which fields made it so (for the history)."""
        counts = self._counts(module)
        counts["invalid"] += 1
        by_field = counts.setdefault("invalid_fields", {})
        for name in fields:
            by_field[name] = by_field.get(name, 0) + 1

    def _live_projects(self) -> set[str]:
        return {s for _, s in self.runner.live_records(self.target.integration_id, Module.PROJECTS)}

    # -- deletes -------------------------------------------------------------------

    def _find_deletes(self) -> None:
        """Emit ``deleted`` for live local records the portal no longer has."""
        projects: set[str | None] = {None}
        for module in (Module.PROJECTS, *CHILDREN, Module.TIMESHEETS):
            if module is Module.TIMESHEETS and "timesheets" not in self.target.modules:
                continue
            local = {
                key: version
                for key, version in self.runner.live_records(
                    self.target.integration_id, module
                ).items()
                if key[0] in projects  # a deleted project's invoiced logs stay as they are
            }
            listed = self._portal_ids(module, local)
            log_types = (
                self.runner.log_types(self.target.integration_id)
                if module is Module.TIMESHEETS
                else {}
            )
            gone = [
                (project_id, source_id, version)
                for (project_id, source_id), version in local.items()
                if (project_id, source_id) not in listed
                and not self.client.exists(
                    module.value, source_id, project_id, log_types.get(source_id)
                )
            ]
            self._emit_deletes(module, gone)
            if module is Module.PROJECTS:
                projects = set(self._live_projects())

    def _portal_ids(
        self, module: Module, local: dict[tuple[str | None, str], datetime | None]
    ) -> set[tuple[str | None, str]]:
        """Ids the portal lists for the projects that have live local records."""
        listed = set(self.listed.get(module, set()))
        for project_id in sorted({p for p, _ in local}, key=str):
            if (module, project_id) in self.whole:
                continue
            if module is Module.PROJECTS:
                pages: Iterator[list[Any]] = self.client.projects()
            elif module is Module.TIMESHEETS:
                assert project_id is not None
                pages = self._timelogs_by_date(project_id, local)
            else:
                assert project_id is not None
                pages = self.client.children(module.value, project_id)
            listed.update((project_id, str(r["id"])) for page in pages for r in page)
        return listed

    def _timelogs_by_date(
        self, project_id: str, local: dict[tuple[str | None, str], datetime | None]
    ) -> Iterator[list[Any]]:
        # Logs are listed by log date; cover the dates of the project's live local logs.
        dates = self.runner.local_log_dates(self.target.integration_id, project_id)
        if not dates:
            return
        for first, last in time_windows(min(dates), max(dates)):
            yield from self.client.timelogs(project_id, first, last, by_modified_time=False)

    def _emit_deletes(
        self, module: Module, gone: list[tuple[str | None, str, datetime | None]]
    ) -> None:
        if not gone:
            return
        now = utcnow()
        messages = []
        for project_id, source_id, version in gone:
            # Deleted "now", but never before the version we hold (clocks differ).
            at = max(now, version + timedelta(milliseconds=1)) if version else now
            data = (
                {"id": source_id}
                if project_id is None
                else {
                    "id": source_id,
                    "project_id": project_id,
                }
            )
            messages.append(
                QueueMessage(
                    event_id=f"pull:{module.value}:{source_id}:deleted",
                    integration_id=self.target.integration_id,
                    source="pull",
                    event=event_adapter.validate_python(
                        pull_event(module.value, data, at, action="deleted")
                    ),
                )
            )
        self.runner.publish(messages)
        self._counts(module)["deleted"] += len(messages)
        self.runner.checkpoint(self.target, self.counts)
        self.runner.wait_committed(self.target, [m.event_id for m in messages], self.counts)


def _credential_key(source: dict[str, Any]) -> str:
    """A name for the credential (a hash: the secrets themselves are not kept around)."""
    credentials = source.get("credentials") or {}
    secret = credentials.get("refresh_token") or credentials.get("access_token") or ""
    text = f"{credentials.get('client_id', '')}:{secret}"
    return hashlib.sha256(text.encode()).hexdigest()


def _error_fields(exc: ValidationError) -> list[str]:
    """The ``data`` field paths a validation error names (``owner.email``, ``minutes``)."""
    fields = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        path = loc[loc.index("data") + 1 :] if "data" in loc else loc
        fields.append(".".join(path) or "data")
    return sorted(set(fields))


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def time_windows(first: date, last: date) -> list[tuple[date, date]]:
    """[first, last] cut into windows the portal accepts (at most six months each)."""
    windows = []
    while first <= last:
        end = min(first + WINDOW - timedelta(days=1), last)
        windows.append((first, end))
        first = end + timedelta(days=1)
    return windows
