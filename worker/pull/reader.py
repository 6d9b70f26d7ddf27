"""Reading the portal for one pull: module by module, as each module's spec says.

Every module is read through its spec (``worker.sync.ModuleSpec``): listed at its
paths, for the whole portal or per synced project, and each record converted by the
spec's converter and validated as the change event a webhook would carry. Event ids
are deterministic (``pull:<module>:<id>:<version>``), so re-reading an unchanged
record is a dedupe, and overlaps are harmless.

The V3 API filters no listing by modification time, so projects, users,
milestones, task lists, tasks and issues are read whole and filtered here against
the watermark; children of a project that is new in the database are taken whatever
the watermark, since their changes may predate it. Time logs (the ``windowed``
module) are the exception: they are read in windows of at most six months, once
per log type (task, issue, general), by modification date from the watermark, or
by log date over ``pull_history_days`` for a first read.

Records that do not fit the contract are counted as ``invalid`` per module, with
the fields that were missing or wrong (``invalid_fields``), in the run's history.

Deletes. Listings cannot show deletions, so the ids a listing returned are kept,
and ``gone`` compares them with the live local records; each record missing from a
listing is confirmed with a GET (404) before it is reported gone, so a record that
only moved between pages is never deleted.

The reader neither publishes nor touches the database: ``worker.pull.runner`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from schemas import Action, Module, WebhookEvent
from worker.db import utcnow
from worker.errors import PermanentError
from worker.portal import (
    LOG_TYPES,
    PortalClient,
    PortalError,
    modified_at,
    pull_event,
    to_event_data,
)
from worker.settings import Settings
from worker.sync import MODULES, ModuleSpec

__all__ = [
    "Gone",
    "PortalReader",
    "Pulled",
    "RecordOutsideContract",
    "module_counts",
    "time_windows",
]

log = logging.getLogger(__name__)

WINDOW = timedelta(days=183)  # the portal's longest time-log window (six months)
# The time-log types listed only where the project has records of the module.
_LOG_TYPE_PARENTS = (("task", Module.TASKS), ("issue", Module.BUGS))

# (project id or None, record id, version held locally) of a record the portal lost.
Gone = tuple[str | None, str, datetime | None]


class RecordOutsideContract(PermanentError):
    """A portal record misses a field the contract needs, or has one it cannot take."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(", ".join(fields))
        self.fields = fields


@dataclass(frozen=True)
class Pulled:
    """One change event read from the portal, under its deterministic event id."""

    event_id: str
    event: WebhookEvent


def module_counts(counts: dict[str, dict[str, Any]], module: Module) -> dict[str, Any]:
    """The run's tallies for ``module`` (in the history and the status)."""
    return counts.setdefault(module.value, {"read": 0, "emitted": 0, "invalid": 0, "deleted": 0})


class PortalReader:
    """What one run reads from one portal, and what it learnt doing so.

    ``counts`` is the run's tally, shared with the runner: the reader counts records
    read and invalid ones.
    """

    def __init__(
        self,
        client: PortalClient,
        settings: Settings,
        *,
        modules: frozenset[str],
        watermarks: dict[str, datetime | None],
        started: datetime,
        counts: dict[str, dict[str, Any]],
    ) -> None:
        self.client = client
        self.settings = settings
        self.modules = modules
        self.watermarks = watermarks
        self.started = started
        self.counts = counts
        self.projects: list[str] = []
        self.projects_known = False
        self.new_projects: set[str] = set()
        self.gone_projects: set[str] = set()
        # Every (project, id) a whole listing returned, for finding deletes.
        self.listed: dict[Module, set[tuple[str | None, str]]] = {}
        self.whole: set[tuple[Module, str | None]] = set()
        # {module: [projects read, portal calls they took]}, to estimate what is left.
        self.spent: dict[Module, list[int]] = {}
        self.parents: dict[Module, set[str | None]] = {}  # projects with tasks, with issues

    def specs(self) -> list[ModuleSpec]:
        """The modules this run reads, in the registry's order (dependencies first)."""
        return [s for s in MODULES.values() if s.synced_for(self.modules)]

    def know_projects(self, live: set[str], before: set[str]) -> None:
        """The synced projects, once the projects read are applied: the children of
        these are read, those of the ones not in ``before`` whatever the watermark."""
        self.projects = sorted(live)
        self.new_projects = live - before
        self.projects_known = True

    # -- reading -------------------------------------------------------------------

    def read(self, spec: ModuleSpec) -> Iterator[list[Pulled]]:
        """Each page of the module, as the events of its records changed since the
        watermark (records outside the contract counted and left out)."""
        counts = module_counts(self.counts, spec.module)
        for project_id, since, page in self._pages(spec):
            pulled = []
            for record in page:
                counts["read"] += 1
                self.listed.setdefault(spec.module, set()).add((project_id, str(record.get("id"))))
                version = modified_at(record) or self.started
                if since is not None and version < since:
                    continue
                try:
                    pulled.append(self.event(spec, record, project_id, version))
                except RecordOutsideContract as exc:
                    self._count_invalid(spec.module, exc.fields)
            yield pulled

    def event(
        self, spec: ModuleSpec, record: dict[str, Any], project_id: str | None, version: datetime
    ) -> Pulled:
        """The record as a change event; RecordOutsideContract when it does not fit."""
        extra = spec.related(self.client, record) if spec.related is not None else {}
        module = spec.module.value
        data = to_event_data(spec.converter, record, project_id, **extra)
        try:
            event = spec.validate_event(pull_event(module, data, version))
        except ValidationError as exc:
            log.warning(
                "portal record does not fit the contract; skipped",
                extra={
                    "fields": {"module": module, "record_id": data.get("id")},
                    "error": str(exc),
                },
            )
            raise RecordOutsideContract(_error_fields(exc)) from exc
        return Pulled(f"pull:{module}:{data['id']}:{_ms(version)}", event)

    def _pages(self, spec: ModuleSpec) -> Iterator[tuple[str | None, datetime | None, list[Any]]]:
        """(project id, since, page) for every page of the module this run reads."""
        since = self._since(spec.module)
        if not spec.per_project:
            self.whole.add((spec.module, None))
            for page in self.client.listing(spec.paths):
                yield None, since, page
            return
        for project_id in self.projects:
            if project_id in self.gone_projects:
                continue
            own = None if project_id in self.new_projects else since
            if spec.windowed:
                pages = self._timelog_pages(spec, project_id, own)
            else:
                self.whole.add((spec.module, project_id))
                pages = self.client.children(spec.paths, project_id)
            calls = self.client.calls
            try:
                for page in pages:
                    yield project_id, own, page
                spent = self.spent.setdefault(spec.module, [0, 0])
                spent[0] += 1
                spent[1] += self.client.calls - calls
            except PortalError as exc:
                if exc.status != 404:
                    raise
                # Deleted in the portal since we synced it (its webhook was lost):
                # the deletes pass confirms and emits it.
                self.gone_projects.add(project_id)

    def _timelog_pages(
        self, spec: ModuleSpec, project_id: str, since: datetime | None
    ) -> Iterator[list[Any]]:
        today = datetime.now(UTC).date()
        if since is None:
            start = today - timedelta(days=self.settings.pull_history_days)
            windows = time_windows(start, today)
            self.whole.add((spec.module, project_id))
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
            for _, module in _LOG_TYPE_PARENTS:
                self.parents[module] = {p for p, _ in self.listed.get(module, set())}
        types = [
            log_type for log_type, module in _LOG_TYPE_PARENTS if project_id in self.parents[module]
        ]
        return [*types, "general"]

    def _since(self, module: Module) -> datetime | None:
        watermark = self.watermarks.get(module.value)
        if watermark is None:
            return None
        return watermark - timedelta(seconds=self.settings.pull_overlap_seconds)

    def _count_invalid(self, module: Module, fields: list[str]) -> None:
        """One more invalid record, and which fields made it so (for the history)."""
        counts = module_counts(self.counts, module)
        counts["invalid"] += 1
        by_field = counts.setdefault("invalid_fields", {})
        for name in fields:
            by_field[name] = by_field.get(name, 0) + 1

    # -- progress ------------------------------------------------------------------

    def portal_calls(self) -> dict[str, Any]:
        """Portal calls so far, whether the request budget is holding the pull back,
        and the time the calls still to make take at the budget (``seconds_left``)."""
        budget = self.client.budget
        calls_left = self._calls_left()
        seconds_left = None
        if calls_left is not None and budget is not None:
            seconds_left = round(budget.seconds_for(calls_left))
        return {
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
        windows = len(
            time_windows(
                date.today() - timedelta(days=self.settings.pull_history_days), date.today()
            )
        )
        left = 0.0
        for spec in self.specs():
            if not spec.per_project:
                continue
            done, spent = self.spent.get(spec.module, [0, 0])
            floor = len(LOG_TYPES) * windows if spec.windowed else 1
            per_project = spent / done if done else floor
            left += max(len(self.projects) - done, 0) * per_project
        return round(left)

    # -- deletes -------------------------------------------------------------------

    def delete_checked(self) -> list[ModuleSpec]:
        """The modules whose deletes this run looks for, in the registry's order."""
        return [s for s in self.specs() if s.detect_deletes]

    def gone(
        self,
        spec: ModuleSpec,
        local: dict[tuple[str | None, str], datetime | None],
        log_types: dict[str, str],
        log_dates: Callable[[str], list[date]],
    ) -> list[Gone]:
        """The ``local`` records (live in the database) the portal no longer has.

        A windowed module's records are confirmed gone by their log type
        (``log_types``), and listed again over the dates of the project's local logs
        (``log_dates``) where this run did not list the project whole.
        """
        listed = self._portal_ids(spec, local, log_dates)
        return [
            (project_id, source_id, version)
            for (project_id, source_id), version in local.items()
            if (project_id, source_id) not in listed
            and not self._exists(spec, source_id, project_id, log_types.get(source_id))
        ]

    def deleted(self, spec: ModuleSpec, gone: list[Gone]) -> list[Pulled]:
        """``deleted`` events for the records the portal no longer has."""
        now = utcnow()
        module = spec.module.value
        pulled = []
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
            event = spec.validate_event(pull_event(module, data, at, action=Action.DELETED))
            pulled.append(Pulled(f"pull:{module}:{source_id}:deleted", event))
        return pulled

    def _exists(
        self, spec: ModuleSpec, source_id: str, project_id: str | None, log_type: str | None
    ) -> bool:
        if spec.windowed:
            assert project_id is not None
            return self.client.log_exists(project_id, source_id, log_type)
        return self.client.exists(spec.paths, source_id, project_id)

    def _portal_ids(
        self,
        spec: ModuleSpec,
        local: dict[tuple[str | None, str], datetime | None],
        log_dates: Callable[[str], list[date]],
    ) -> set[tuple[str | None, str]]:
        """Ids the portal lists for the projects that have live local records."""
        listed = set(self.listed.get(spec.module, set()))
        for project_id in sorted({p for p, _ in local}, key=str):
            if (spec.module, project_id) in self.whole:
                continue
            if not spec.per_project:
                pages: Iterator[list[Any]] = self.client.listing(spec.paths)
            elif spec.windowed:
                assert project_id is not None
                pages = self._timelogs_by_date(project_id, log_dates)
            else:
                assert project_id is not None
                pages = self.client.children(spec.paths, project_id)
            listed.update((project_id, str(r["id"])) for page in pages for r in page)
        return listed

    def _timelogs_by_date(
        self, project_id: str, log_dates: Callable[[str], list[date]]
    ) -> Iterator[list[Any]]:
        # Logs are listed by log date; cover the dates of the project's live local logs.
        dates = log_dates(project_id)
        if not dates:
            return
        for first, last in time_windows(min(dates), max(dates)):
            yield from self.client.timelogs(project_id, first, last, by_modified_time=False)


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
