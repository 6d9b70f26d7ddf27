"""A portal module declared through one ``ModuleSpec``, and nothing else of billsync.

The test declares a throwaway module, "widgets" (records of a project), by itself: a
payload model, an event model, a table, a REST converter and a spec with the
generic child writer. Registered, the spec is all the machinery needs: the apply
path the consumer takes writes widget rows (newest version wins, the project
relation resolved, refusals for a missing project healed when it arrives, withdrawn
with their project), and the pull reader lists widgets in the fake portal at the
spec's paths (falling back to the older one) and converts them with its converter.

Adding a real module touches:

- ``schemas``: its payload model (``schemas/payloads.py``), its event class in the
  envelope's union and its ``Module`` member, at its place in the order
  (``schemas/envelope.py``), and ``ModuleName`` (``schemas/api.py``) if
  integrations select it;
- ``worker.db``: its table (``worker/db/synced.py``) and the migration creating it;
- its converter, if the pull reads it (``worker/portal/converters.py``);
- its spec file, ``worker/sync/modules/<module>.py`` (its columns and ``SPEC``),
  found by the registry.

What stands in for the schemas part here is test-local. The envelope is a closed
union over ``schemas.Module``, so a widget event is read by the spec's
``validate_event`` (for a real module, the union) and carried in a
``QueueMessage`` built with ``model_construct`` (validating it would refuse an
unknown module). So this test applies batches directly, as the consumer does
after decoding; it cannot go through the broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import httpx
import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, TypeAdapter
from sqlalchemy import Engine, MetaData, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from schemas import Action, DeletedEvent, Module, QueueMessage
from schemas.payloads import DeletedRecord, UtcDatetime
from tests.events import deleted, event, project
from tests.fake_portal import LIST_KEYS, FakePortal
from tests.fake_portal_shapes import iso
from tests.integration.sync_harness import Sync
from worker.db import Base, Project, SyncedRecord
from worker.portal.auth import StaticToken
from worker.portal.client import PortalClient
from worker.pull.reader import PortalReader
from worker.settings import Settings
from worker.sync import (
    PROJECT_RELATION,
    ModuleSpec,
    RowContext,
    apply_batch,
    registered,
    write_children,
)

pytestmark = pytest.mark.integration


# -- the module, as its author would declare it ------------------------------------------


class Extra(StrEnum):
    """Stands in for a new ``schemas.Module`` member."""

    WIDGETS = "widgets"


WIDGETS = Extra.WIDGETS


class WidgetData(BaseModel):
    """The payload (a real module's lives in ``schemas.payloads``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str
    project_id: str
    name: str
    size: int | None = None


class WidgetEvent(BaseModel):
    """A created or updated widget (a real module's is a member of the envelope's union)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str | None = None
    module: Literal[Extra.WIDGETS]
    action: Literal[Action.CREATED, Action.UPDATED]
    modified_at: UtcDatetime
    data: WidgetData


_WHEN: TypeAdapter[AwareDatetime] = TypeAdapter(UtcDatetime)


def read_widget_event(value: Any) -> Any:
    """What the envelope's union does for a real module: a delete is a ``DeletedEvent``,
    anything else the module's event."""
    if value.get("action") == Action.DELETED:
        return DeletedEvent.model_construct(
            event_id=value.get("event_id"),
            module=WIDGETS,
            action=Action.DELETED,
            modified_at=_WHEN.validate_python(value["modified_at"]),
            data=DeletedRecord.model_validate(value["data"]),
        )
    return WidgetEvent.model_validate(value)


class _TestBase(DeclarativeBase):
    # Its own metadata: the suite's table list (and its truncation) stays billsync's.
    metadata = MetaData()
    type_annotation_map = Base.type_annotation_map


# The tables the widget table's foreign keys name, whose key columns give their types.
for _name in ("organizations", "integrations"):
    Base.metadata.tables[_name].to_metadata(_TestBase.metadata)


class Widget(SyncedRecord, _TestBase):
    """The table (a real module's is in ``worker.db``, created by a migration)."""

    __tablename__ = "test_widgets"

    project_source_id: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[int | None]
    name: Mapped[str | None]
    size: Mapped[int | None]


CREATE_TABLE = """
CREATE TABLE test_widgets (
    id BIGSERIAL PRIMARY KEY,
    organization_id VARCHAR(36) NOT NULL REFERENCES organizations (id),
    integration_id VARCHAR(36) REFERENCES integrations (id),
    source_id VARCHAR(64),
    source_modified_at TIMESTAMP WITH TIME ZONE,
    deleted BOOLEAN NOT NULL DEFAULT false,
    payload JSONB,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    project_source_id VARCHAR(64),
    project_id BIGINT REFERENCES projects (id),
    name VARCHAR(255),
    size BIGINT,
    UNIQUE (integration_id, source_id)
)
"""


def widget_columns(data: Any, _ctx: RowContext) -> dict[str, Any]:
    assert isinstance(data, WidgetData)
    return {
        "project_source_id": data.project_id,
        "name": data.name,
        "size": data.size,
    }


def convert_widget(record: dict[str, Any]) -> dict[str, Any]:
    """The portal lists a widget's name as ``label`` and its size under ``dimensions``."""
    return {
        "id": str(record["id"]),
        "name": record.get("label"),
        "size": (record.get("dimensions") or {}).get("size"),
    }


SPEC = ModuleSpec(
    module=WIDGETS,  # type: ignore[arg-type]  # a real module's is a Module member
    model=Widget,
    payload=WidgetData,
    columns=widget_columns,
    relations=(PROJECT_RELATION,),
    writer=write_children,
    dependencies=(Module.PROJECTS,),
    per_project=True,
    # The portal's current name first, then the older one it may still answer to.
    paths=("widgets", "gizmos"),
    converter=convert_widget,
    validate_event=read_widget_event,
)


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def widgets(pg_engine: Engine, sync: Sync) -> Iterator[None]:
    """The widgets table exists and the spec is registered, for the test."""
    with pg_engine.begin() as connection:
        connection.execute(text(CREATE_TABLE))
    try:
        with registered(SPEC):
            yield
    finally:
        with pg_engine.begin() as connection:
            connection.execute(text("DROP TABLE test_widgets"))


def widget(wid: str = "W1", *, name: str = "Left", at: str = "2026-11-24T10:00:00Z") -> Any:
    data = {"id": wid, "project_id": "P1", "name": name, "size": 3}
    return read_widget_event(event(WIDGETS.value, data, at=at))


def widget_deleted(wid: str = "W1", *, at: str) -> Any:
    return read_widget_event(deleted(WIDGETS.value, wid, "P1", at=at))


def carried(sync: Sync, widget_event: Any, event_id: str | None = None) -> QueueMessage:
    # Validating would refuse a module outside schemas.Module (see the docstring).
    return QueueMessage.model_construct(
        event_id=event_id or f"e-{uuid.uuid4().hex}",
        integration_id=sync.integration_id,
        source="webhook",
        received_at=datetime.now(UTC),
        event=widget_event,
    )


def apply(sync: Sync, *events: Any) -> list[str]:
    """Apply widget events as one batch, as the consumer does; their statuses."""
    with sync.sessions.begin() as session:
        return [o.status for o in apply_batch(session, [carried(sync, e) for e in events])]


def stored(sessions: sessionmaker[Session], wid: str = "W1") -> Widget:
    with sessions() as session:
        return session.scalars(select(Widget).where(Widget.source_id == wid)).one()


def project_id(sessions: sessionmaker[Session], pid: str = "P1") -> int:
    with sessions() as session:
        return session.scalars(select(Project.id).where(Project.source_id == pid)).one()


# -- applying ----------------------------------------------------------------------------


def test_a_widget_of_a_synced_project_is_written_with_its_project(
    widgets: None, sync: Sync
) -> None:
    assert sync.apply(project("P1")) == ["applied"]
    assert apply(sync, widget(name="Left")) == ["applied"]
    row = stored(sync.sessions)
    assert (row.name, row.size, row.project_source_id) == ("Left", 3, "P1")
    assert row.project_id == project_id(sync.sessions)
    assert (row.payload or {})["name"] == "Left"


def test_the_newest_widget_version_wins_whatever_the_order(widgets: None, sync: Sync) -> None:
    sync.apply(project("P1"))
    newer, older = "2026-11-24T11:00:00Z", "2026-11-24T10:00:00Z"
    assert apply(sync, widget(name="New", at=newer), widget(name="Old", at=older)) == [
        "applied",
        "stale",
    ]
    assert apply(sync, widget(name="Late", at=older)) == ["stale"]
    assert stored(sync.sessions).name == "New"


def test_a_widget_delete_is_a_tombstone_an_older_update_cannot_lift(
    widgets: None, sync: Sync
) -> None:
    sync.apply(project("P1"))
    apply(sync, widget(at="2026-11-24T10:00:00Z"))
    assert apply(sync, widget_deleted(at="2026-11-24T12:00:00Z")) == ["applied"]
    assert apply(sync, widget(name="Late", at="2026-11-24T11:00:00Z")) == ["stale"]
    row = stored(sync.sessions)
    assert (row.deleted, row.name) == (True, "Left")


def test_a_widget_waits_for_its_project_and_is_healed_when_it_arrives(
    widgets: None, sync: Sync
) -> None:
    assert apply(sync, widget()) == ["refused"]
    assert sync.errors() == [("widgets", "W1", "related_project_missing", 1)]
    sync.apply(project("P1"))
    assert stored(sync.sessions).project_id == project_id(sync.sessions)
    assert sync.errors() == []


def test_widgets_are_withdrawn_with_their_project(widgets: None, sync: Sync) -> None:
    sync.apply(project("P1"))
    apply(sync, widget())
    sync.apply(deleted("projects", "P1", at="2026-11-24T12:00:00Z"))
    assert stored(sync.sessions).deleted is True


# -- pulling -----------------------------------------------------------------------------


class WidgetPortal(FakePortal):
    """The fake portal with widgets, listed at the older path only (as V2 listed bugs)."""

    def __init__(self) -> None:
        super().__init__()
        self._store[WIDGETS.value] = {}

    def _module_of(self, path: str) -> str:
        return WIDGETS.value if path == "gizmos" else super()._module_of(path)

    def _render(self, module: str, row: Any) -> dict[str, Any]:
        if module != WIDGETS.value:
            return super()._render(module, row)
        return {
            "id": row.data["id"],
            "label": row.data.get("name"),
            "dimensions": {"size": row.data.get("size")},
            "modified_time": iso(row.modified),
        }


@pytest.fixture
def portal(monkeypatch: pytest.MonkeyPatch) -> WidgetPortal:
    monkeypatch.setitem(LIST_KEYS, WIDGETS.value, "gizmos")
    portal = WidgetPortal()
    portal.put("projects", {"id": "P1", "name": "Apollo"})
    portal.put(WIDGETS.value, {"id": "W1", "project_id": "P1", "name": "Left", "size": 3})
    portal.put(WIDGETS.value, {"id": "W2", "project_id": "P1", "name": "Right"})
    portal.put(WIDGETS.value, {"id": "W3", "project_id": "P1"})  # no name: invalid
    return portal


@pytest.fixture
def portal_client(portal: WidgetPortal) -> Iterator[PortalClient]:
    with PortalClient(
        "http://portal.test",
        portal.portal_id,
        StaticToken(portal.access_token),
        transport=httpx.WSGITransport(app=portal.app),
        sleep=lambda _s: None,
    ) as client:
        yield client


def reader_for(client: PortalClient, settings: Settings) -> PortalReader:
    """A reader as a run starts it, once project P1 is known to be synced."""
    reader = PortalReader(
        client,
        settings,
        modules=frozenset({"projects"}),
        watermarks={},
        started=datetime.now(UTC),
        counts={},
    )
    reader.know_projects({"P1"}, before=set())
    return reader


def test_the_pull_reads_widgets_at_the_specs_path_with_its_converter(
    widgets: None,
    sync: Sync,
    portal: WidgetPortal,
    portal_client: PortalClient,
    settings: Settings,
) -> None:
    reader = reader_for(portal_client, settings)
    assert SPEC in reader.specs()
    pulled = [p for page in reader.read(SPEC) for p in page]

    listed = [path for _, path, _ in portal.requests if path.endswith(("/widgets", "/gizmos"))]
    assert [p.rsplit("/", 1)[1] for p in listed] == ["widgets", "gizmos"]
    assert {p.event.data.id: (p.event.data.name, p.event.data.size) for p in pulled} == {
        "W1": ("Left", 3),
        "W2": ("Right", None),
    }
    assert {p.event_id.rsplit(":", 1)[0] for p in pulled} == {"pull:widgets:W1", "pull:widgets:W2"}
    assert reader.counts["widgets"]["read"] == 3
    assert reader.counts["widgets"]["invalid_fields"] == {"name": 1}

    sync.apply(project("P1"))
    with sync.sessions.begin() as session:
        messages = [carried(sync, p.event, p.event_id) for p in pulled]
        assert [o.status for o in apply_batch(session, messages)] == ["applied", "applied"]
    assert stored(sync.sessions, "W2").project_id == project_id(sync.sessions)


def test_the_pull_finds_a_widget_the_portal_deleted(
    widgets: None,
    sync: Sync,
    portal: WidgetPortal,
    portal_client: PortalClient,
    settings: Settings,
) -> None:
    sync.apply(project("P1"))
    apply(sync, widget("W1"), widget("W2"))
    portal.delete(WIDGETS.value, "W2")
    with sync.sessions() as session:
        local = {
            (w.project_source_id, w.source_id): w.source_modified_at
            for w in session.scalars(select(Widget).where(Widget.deleted.is_(False)))
        }

    reader = reader_for(portal_client, settings)
    assert SPEC in reader.delete_checked()
    gone = reader.gone(SPEC, local, {}, lambda _project: [])
    assert [(p, s) for p, s, _ in gone] == [("P1", "W2")]
    with sync.sessions.begin() as session:
        messages = [carried(sync, p.event, p.event_id) for p in reader.deleted(SPEC, gone)]
        assert [o.status for o in apply_batch(session, messages)] == ["applied"]
    assert (stored(sync.sessions, "W1").deleted, stored(sync.sessions, "W2").deleted) == (
        False,
        True,
    )
