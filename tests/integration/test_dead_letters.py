"""Dead letters on real RabbitMQ and PostgreSQL: archived whole, found by filter, replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pika
import pytest
from flask.testing import FlaskClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from schemas import QueueMessage
from tests.conftest import Connected, Org, make_org
from tests.events import message, project
from tests.support import (
    BrokerProbe,
    Recorder,
    row_count,
    running,
    send_signed,
    wait_until,
)
from worker.cli.runtime import build_archiver, build_consumer
from worker.db import DeadLetter, DeadLetterEdit, Project
from worker.errors import BrokerUnavailable
from worker.messaging import Hooks, dead_letters
from worker.messaging.dead_letters import DeadLetterFilter, archive, edit, replay
from worker.messaging.publisher import Publisher
from worker.messaging.topology import APPLY_QUEUE, build_topology
from worker.settings import Settings

LATER = "2026-11-25T09:00:00Z"


class Poisoned(Hooks):
    """Applying the event "poison" always raises; everything else applies."""

    def before_apply(self, messages: Sequence[QueueMessage]) -> None:
        if any(m.event_id == "poison" for m in messages):
            raise RuntimeError("poison event")


def store(
    sessions: sessionmaker[Session], integration_id: str, count: int, *, module_event: Any = project
) -> None:
    """``count`` dead letters of project events, as the worker would have left them."""
    with sessions.begin() as session:
        for n in range(count):
            dead = message(module_event(f"P{n}"), integration_id, f"dead-{n}")
            headers = {
                "x-billsync-error-class": "OperationalError" if n % 2 else "IntegrityError",
                "x-billsync-error-message": "boom",
                "x-billsync-attempts": 5,
                "x-billsync-first-failure": "2026-11-25T10:00:00+00:00",
                "x-billsync-last-failure": "2026-11-25T10:01:00+00:00",
            }
            archive(session, dead.model_dump_json(), headers, "projects.updated")


def remaining(sessions: sessionmaker[Session]) -> int:
    return row_count(sessions, DeadLetter)


def projects(sessions: sessionmaker[Session]) -> int:
    return row_count(sessions, Project)


def test_a_poison_event_is_archived_with_its_error_while_the_queue_keeps_flowing(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project("X", event_id="poison"))
    for n in range(20):
        send_signed(client, integration, project(f"P{n}", event_id=f"ok-{n}"))
    poisoned = build_consumer(settings, pg_sessions, hooks=[Poisoned()])

    with running(poisoned, build_archiver(settings, pg_sessions)):
        wait_until(lambda: remaining(pg_sessions) == 1, timeout=20)
        assert projects(pg_sessions) == 20

    with pg_sessions() as session:
        row = session.scalars(select(DeadLetter)).one()
    assert (row.event_id, row.integration_id) == ("poison", integration.id)
    assert (row.module, row.action, row.error_class) == ("projects", "updated", "RuntimeError")
    assert row.attempts == settings.apply_max_attempts
    assert "poison event" in row.traceback
    assert "x-billsync-traceback" not in row.headers  # kept once, in its column
    assert row.first_failure_at is not None and row.last_failure_at is not None
    assert json.loads(row.body)["event_id"] == "poison"
    assert broker.depth() == 0


def test_a_filtered_replay_touches_only_matching_dead_letters(
    integration: Connected,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    broker: BrokerProbe,
) -> None:
    store(pg_sessions, integration.id, 10)

    result = replay(pg_sessions, publisher, DeadLetterFilter(error_class="IntegrityError"))

    assert (result.matched, result.replayed) == (5, 5)
    wait_until(lambda: broker.depth() == 5)
    with pg_sessions() as session:
        left = {r.error_class for r in session.scalars(select(DeadLetter))}
    assert left == {"OperationalError"}
    got = broker.get()
    assert got is not None and got[1].headers["source"] == "replay"


def test_a_dry_run_changes_nothing(
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
    database_url: str,
    broker_url: str,
    tmp_path: Any,
) -> None:
    store(pg_sessions, integration.id, 4)
    env = {
        "PATH": "/usr/bin:/bin",
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "dlq", "replay", "--module", "projects", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"matching": 4, "dry_run": True}
    assert remaining(pg_sessions) == 4
    assert broker.depth() == 0


def test_a_replay_without_a_filter_needs_all(
    database_url: str, broker_url: str, tmp_path: Any
) -> None:
    env = {
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_DATA_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    done = subprocess.run(
        [sys.executable, "-m", "worker.cli", "dlq", "replay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert "--all" in done.stderr


class ReplayClock:
    """A fake monotonic clock: ``sleep`` moves it on at once, so pacing takes no real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Timed(Publisher):
    """A publisher that notes (clock time, messages sent so far) after every publish."""

    def __init__(self, settings: Settings, clock: ReplayClock) -> None:
        super().__init__(settings, build_topology(settings))
        self.clock = clock
        self.sent: list[tuple[float, int]] = []

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        super().publish(messages)
        total = self.sent[-1][1] if self.sent else 0
        self.sent.append((self.clock(), total + len(messages)))


def test_a_rate_limited_replay_never_publishes_faster_than_the_cap(
    integration: Connected,
    pg_sessions: sessionmaker[Session],
    settings: Settings,
    broker: BrokerProbe,
) -> None:
    store(pg_sessions, integration.id, 300)
    clock = ReplayClock()
    publisher = Timed(settings, clock)
    rate = 150
    burst = rate // 10  # a chunk: a tenth of a second's worth, published together
    started = clock()

    result = replay(
        pg_sessions,
        publisher,
        DeadLetterFilter(module="projects"),
        rate=rate,
        clock=clock,
        sleep=clock.sleep,
    )

    assert result.replayed == 300
    for at, sent in publisher.sent:
        # Never ahead of the cap (1e-6: the fake clock adds up floats).
        assert sent <= rate * (at - started) + burst + 1e-6
    wait_until(lambda: broker.depth() == 300)
    publisher.close()


class FailsAfter(Publisher):
    """A publisher whose broker goes away after ``confirmed`` messages."""

    def __init__(self, settings: Settings, confirmed: int) -> None:
        super().__init__(settings, build_topology(settings))
        self.left = confirmed

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        if self.left < len(messages):
            raise BrokerUnavailable("broker did not confirm the publish")
        self.left -= len(messages)
        super().publish(messages)


def test_an_interrupted_replay_loses_nothing_and_applies_nothing_twice(
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Chunks of 100 instead of 1,000: the same boundaries with a tenth of the letters.
    monkeypatch.setattr(dead_letters, "REPLAY_CHUNK", 100)
    store(pg_sessions, integration.id, 250)
    failing = FailsAfter(settings, confirmed=100)

    with pytest.raises(BrokerUnavailable):
        replay(pg_sessions, failing, DeadLetterFilter(module="projects"))

    assert remaining(pg_sessions) == 150
    wait_until(lambda: broker.depth() == 100)
    again = Publisher(settings, build_topology(settings))
    assert replay(pg_sessions, again, DeadLetterFilter(module="projects")).replayed == 150
    with running(build_consumer(settings, pg_sessions)):
        wait_until(lambda: projects(pg_sessions) == 250)
    assert remaining(pg_sessions) == 0
    failing.close()
    again.close()


def test_a_replay_reads_only_ids_and_bodies_and_deletes_each_chunk_in_one_statement(
    integration: Connected,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    broker: BrokerProbe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dead_letters, "REPLAY_CHUNK", 100)
    store(pg_sessions, integration.id, 250)
    statements: list[str] = []
    engine = pg_sessions.kw["bind"]

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        result = replay(pg_sessions, publisher, DeadLetterFilter())
    finally:
        event.remove(engine, "before_cursor_execute", seen)

    assert result.replayed == 250
    reads = [s for s in statements if s.startswith("SELECT dead_letters.id")]
    deletes = [s for s in statements if s.startswith("DELETE FROM dead_letters")]
    assert len(reads) == 3 and len(deletes) == 3
    assert all(s.startswith("SELECT dead_letters.id, dead_letters.body FROM") for s in reads)
    wait_until(lambda: broker.depth() == 250)
    assert remaining(pg_sessions) == 0


def test_a_dead_letters_detail_shows_its_traceback_kept_once(
    client: FlaskClient, integration: Connected, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    dead = message(project("P1"), integration.id, "dead-1")
    headers = {
        "x-billsync-error-class": "IntegrityError",
        "x-billsync-traceback": "Traceback (most recent call last): …",
        "event-id": "dead-1",
    }
    with pg_sessions.begin() as session:
        row = archive(session, dead.model_dump_json(), headers, "projects.updated")
        assert "x-billsync-traceback" not in row.headers
        dead_id = row.id

    response = client.get(f"/api/v1/dead-letters/{dead_id}", headers=org.auth("viewer"))

    body = response.get_json()
    assert body["traceback"] == "Traceback (most recent call last): …"
    assert body["headers"] == {"x-billsync-error-class": "IntegrityError", "event-id": "dead-1"}


def test_edit_and_replay_keeps_the_original_and_the_edit(
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    broker: BrokerProbe,
) -> None:
    store(pg_sessions, integration.id, 1)
    with pg_sessions.begin() as session:
        row = session.scalars(select(DeadLetter)).one()
        edit(session, row, project("P0", name="Fixed name"), by="ops@example.com")

    replay(pg_sessions, publisher, DeadLetterFilter(event_id="dead-0"))
    with running(build_consumer(settings, pg_sessions)):
        wait_until(lambda: projects(pg_sessions) == 1)

    with pg_sessions() as session:
        audit = session.scalars(select(DeadLetterEdit)).one()
        name = session.scalars(select(Project.name)).one()
    assert name == "Fixed name"
    assert audit.edited_by == "ops@example.com"
    assert json.loads(audit.original)["event"]["data"]["name"] == "Project P0"
    assert json.loads(audit.edited)["event"]["data"]["name"] == "Fixed name"


# -- the API: same semantics, scoped to the organization -------------------------------


def test_the_api_lists_dead_letters_by_filter_with_the_total(
    client: FlaskClient, integration: Connected, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    store(pg_sessions, integration.id, 6)

    response = client.get(
        "/api/v1/dead-letters?error_class=IntegrityError&limit=2", headers=org.auth("viewer")
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["total"] == 3
    assert [i["error_class"] for i in body["items"]] == ["IntegrityError"] * 2
    assert body["next_cursor"] is not None


def test_the_api_lists_dead_letters_by_id_given_more_than_once(
    client: FlaskClient, integration: Connected, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    store(pg_sessions, integration.id, 3)
    with pg_sessions() as session:
        first, _, third = session.scalars(select(DeadLetter.id).order_by(DeadLetter.id))

    response = client.get(
        f"/api/v1/dead-letters?ids={first}&ids={third}", headers=org.auth("viewer")
    )

    # The filter's ids were read as one text and refused (422) before.
    assert response.status_code == 200, response.get_json()
    assert [i["id"] for i in response.get_json()["items"]] == [first, third]


def test_another_organization_sees_no_dead_letter(
    client: FlaskClient, integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    store(pg_sessions, integration.id, 1)
    other = make_org(pg_sessions, "Other")
    with pg_sessions() as session:
        dead_id = session.scalars(select(DeadLetter.id)).one()

    assert client.get("/api/v1/dead-letters", headers=other.auth()).get_json()["total"] == 0
    assert client.get(f"/api/v1/dead-letters/{dead_id}", headers=other.auth()).status_code == 404


def test_an_api_replay_needs_a_filter_or_all_and_a_dry_run_changes_nothing(
    client: FlaskClient,
    integration: Connected,
    org: Org,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    store(pg_sessions, integration.id, 3)

    refused = client.post("/api/v1/dead-letters/replay", json={}, headers=org.auth())
    dry = client.post(
        "/api/v1/dead-letters/replay", json={"all": True, "dry_run": True}, headers=org.auth()
    )

    assert refused.status_code == 422
    assert dry.get_json() == {"matching": 3, "dry_run": True}
    assert remaining(pg_sessions) == 3
    assert broker.depth() == 0


def test_an_edited_replay_through_the_api_is_audited_with_the_token(
    client: FlaskClient,
    integration: Connected,
    org: Org,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    store(pg_sessions, integration.id, 1)
    with pg_sessions() as session:
        dead_id = session.scalars(select(DeadLetter.id)).one()

    response = client.post(
        f"/api/v1/dead-letters/{dead_id}/replay",
        json={"event": project("P0", name="Fixed")},
        headers=org.auth(),
    )

    assert response.get_json()["replayed"] == 1
    wait_until(lambda: broker.depth() == 1)
    with pg_sessions() as session:
        audit = session.scalars(select(DeadLetterEdit)).one()
    assert audit.edited_by.startswith("token:")
    assert remaining(pg_sessions) == 0


def test_a_viewer_cannot_replay_or_delete(
    client: FlaskClient, integration: Connected, org: Org, pg_sessions: sessionmaker[Session]
) -> None:
    store(pg_sessions, integration.id, 1)
    viewer = org.auth("viewer")

    assert (
        client.post("/api/v1/dead-letters/replay", json={"all": True}, headers=viewer).status_code
        == 403
    )
    assert (
        client.post("/api/v1/dead-letters/delete", json={"all": True}, headers=viewer).status_code
        == 403
    )
    assert remaining(pg_sessions) == 1


def deliver_and_die(url: str) -> None:
    """Take the message from the apply queue, then die without an ack (it is requeued)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    wait_until(lambda: channel.basic_get(APPLY_QUEUE)[0] is not None)
    connection.close()


def test_a_message_that_kills_the_worker_every_time_is_dead_lettered_by_the_broker(
    settings: Settings, pg_sessions: sessionmaker[Session], broker: BrokerProbe
) -> None:
    limited = settings.model_copy(update={"delivery_limit": 3})
    publisher = Publisher(limited, build_topology(limited))
    publisher.declare_topology()
    publisher.publish([message(project(), "i-1", "killer")])

    for _ in range(4):
        deliver_and_die(settings.broker_url)

    with running(build_archiver(limited, pg_sessions)):
        wait_until(lambda: remaining(pg_sessions) == 1)
    with pg_sessions() as session:
        row = session.scalars(select(DeadLetter)).one()
    assert (row.event_id, row.error_class) == ("killer", "DeliveryLimitExceeded")
    assert broker.depth() == 0
    publisher.close()


def test_replaying_an_event_that_was_applied_meanwhile_changes_nothing(
    client: FlaskClient,
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    broker: BrokerProbe,
) -> None:
    send_signed(client, integration, project("P0", name="Applied", event_id="dead-0"))
    recorder = Recorder()
    with running(build_consumer(settings, pg_sessions, hooks=[recorder])):
        wait_until(lambda: recorder.statuses() == ["applied"])
        # The same event id, dead-lettered elsewhere, carrying a newer version.
        store(pg_sessions, integration.id, 1, module_event=lambda pid: project(pid, at=LATER))

        replay(pg_sessions, publisher, DeadLetterFilter(event_id="dead-0"))
        wait_until(lambda: recorder.statuses() == ["applied", "duplicate"])

    with pg_sessions() as session:
        assert session.scalars(select(Project.name)).one() == "Applied"


# -- editing an unreadable dead letter: only the edit is checked, and it repairs the letter


UNREADABLE = "this is not a queue message"


def unreadable(sessions: sessionmaker[Session], body: str = UNREADABLE) -> int:
    """A dead letter whose body was never a queue message; its id."""
    with sessions.begin() as session:
        headers = {"x-billsync-error-class": "UndecodableMessage", "x-billsync-attempts": 1}
        return archive(session, body, headers, "projects.updated").id


def dlq_edit(
    env: dict[str, str], tmp_path: Any, dead_id: int, event: Any, *options: str
) -> subprocess.CompletedProcess[str]:
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(event))
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", "dlq", "edit", str(dead_id), str(edited), *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli_env(database_url: str, broker_url: str, tmp_path: Any) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_DATA_DIR": str(tmp_path),
    }


def test_dlq_edit_of_an_unreadable_letter_blames_only_what_is_wrong_with_the_edit(
    integration: Connected,
    pg_sessions: sessionmaker[Session],
    cli_env: dict[str, str],
    tmp_path: Any,
) -> None:
    dead_id = unreadable(pg_sessions)
    wrong = {**project("P0"), "action": "renamed"}

    done = dlq_edit(cli_env, tmp_path, dead_id, wrong, "--integration", integration.id)

    assert done.returncode == 1
    assert "the edited event does not fit the contract" in done.stderr
    assert "renamed" in done.stderr and UNREADABLE not in done.stderr


def test_dlq_edit_repairs_an_unreadable_letter_which_then_replays_and_applies(
    integration: Connected,
    settings: Settings,
    pg_sessions: sessionmaker[Session],
    publisher: Publisher,
    broker: BrokerProbe,
    cli_env: dict[str, str],
    tmp_path: Any,
) -> None:
    dead_id = unreadable(pg_sessions)

    done = dlq_edit(
        cli_env,
        tmp_path,
        dead_id,
        project("P0", name="Repaired"),
        "--integration",
        integration.id,
        "--event-id",
        "repaired-1",
    )
    result = replay(pg_sessions, publisher, DeadLetterFilter(ids=(dead_id,)))
    with running(build_consumer(settings, pg_sessions)):
        wait_until(lambda: projects(pg_sessions) == 1)

    assert done.returncode == 0, done.stderr
    assert (result.replayed, result.unreadable) == (1, 0)
    with pg_sessions() as session:
        assert session.scalars(select(Project.name)).one() == "Repaired"
        audit = session.scalars(select(DeadLetterEdit)).one()
    assert (audit.original, audit.event_id) == (UNREADABLE, "repaired-1")
    assert json.loads(audit.edited)["integration_id"] == integration.id


def test_an_unreadable_letter_naming_no_integration_is_not_repaired_without_one(
    integration: Connected,
    pg_sessions: sessionmaker[Session],
    cli_env: dict[str, str],
    tmp_path: Any,
) -> None:
    dead_id = unreadable(pg_sessions)

    done = dlq_edit(cli_env, tmp_path, dead_id, project("P0"))

    assert done.returncode == 1
    assert "names no integration" in done.stderr
    with pg_sessions() as session:
        assert session.get_one(DeadLetter, dead_id).body == UNREADABLE


def test_a_repaired_letter_without_an_event_id_gets_a_new_one(
    integration: Connected, pg_sessions: sessionmaker[Session]
) -> None:
    dead_id = unreadable(pg_sessions)

    with pg_sessions.begin() as session:
        row = session.get_one(DeadLetter, dead_id)
        edit(session, row, project("P0"), "ops", integration_id=integration.id)

    with pg_sessions() as session:
        repaired = QueueMessage.model_validate_json(session.get_one(DeadLetter, dead_id).body)
    assert repaired.event_id.startswith(f"dlq-{dead_id}-")
    assert repaired.integration_id == integration.id


def test_the_api_repairs_an_unreadable_letter_of_its_integration_with_a_given_event_id(
    client: FlaskClient,
    integration: Connected,
    org: Org,
    pg_sessions: sessionmaker[Session],
    broker: BrokerProbe,
) -> None:
    # A body that names the integration but is no queue message: the API can reach it
    dead_id = unreadable(pg_sessions, json.dumps({"integration_id": integration.id, "x": 1}))
    url = f"/api/v1/dead-letters/{dead_id}/replay"

    wrong = client.post(url, json={"event": {"module": "projects"}}, headers=org.auth())
    fixed = client.post(
        url, json={"event": project("P0"), "event_id": "repaired-2"}, headers=org.auth()
    )

    assert wrong.status_code == 422
    assert all(d["path"] != "event_id" for d in wrong.get_json()["details"])
    assert fixed.get_json()["replayed"] == 1
    wait_until(lambda: broker.depth() == 1)
    got = broker.get()
    assert got is not None and json.loads(got[2])["event_id"] == "repaired-2"
