"""What the benchmarks share: a throwaway PostgreSQL database and a RabbitMQ vhost on
the suite's servers, billsync's own processes (gateway, worker) started and stopped
around a measurement, a tenant to send events for, a backlog drained by workers, and
ways to watch the queue, the applied count, a process's memory and the CPU time of
billsync's processes and of the servers from outside."""

from __future__ import annotations

import ctypes
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

import httpx
import pika
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from schemas import QueueMessage, routing_key
from schemas.api import IntegrationCreate
from tests import servers
from worker.accounts.organizations import create_organization
from worker.db import (
    Integration,
    IntegrationActivity,
    Organization,
    ProcessedEvent,
    make_sessionmaker,
)
from worker.integrations.lifecycle import connect
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1
APPLY_QUEUE = "billsync.apply"
EVENTS_EXCHANGE = "billsync.events"
# One key per benchmark process: what one step seals, the gateway and worker can open.
CREDENTIAL_KEY = Fernet.generate_key().decode()


@contextmanager
def temporary_database(template: str | None = None) -> Iterator[str]:
    """A new database's URL, dropped afterwards (found as the test suite finds servers);
    a copy of the database at URL ``template`` (no one may be connected to it) if given."""
    server = make_url(servers.postgres_server_url())
    name = f"billsync_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_broker: list[str] = []


def broker_url() -> str:
    """RabbitMQ, on one vhost for the whole benchmark process (``servers.stop_all()``
    removes it); each row starts by deleting billsync's queues."""
    if not _broker:
        _broker.append(servers.rabbitmq_url())
    return _broker[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def settings_for(database_url: str, **extra: Any) -> Settings:
    """Settings as billsync's processes get them from ``billsync_env``."""
    return Settings(
        database_url=database_url,
        broker_url=broker_url(),
        credential_key=CREDENTIAL_KEY,
        log_level="WARNING",
        **extra,
    )


def billsync_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``billsync`` process: this one's without any BILLSYNC_*
    setting of the caller's, on the benchmark's database and broker."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BILLSYNC_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env | {
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": broker_url(),
        "BILLSYNC_CREDENTIAL_KEY": CREDENTIAL_KEY,
        "BILLSYNC_LOG_LEVEL": "WARNING",
        "BILLSYNC_METRICS_PORT": str(free_port()),
        **extra,
    }


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class Process:
    """A process this benchmark started, in a process group of its own."""

    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    name: str

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int = 3000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def check(self) -> None:
        """Raise with its output if it has exited."""
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")

    def terminate(self) -> None:
        """SIGTERM to its group, not waiting (``stop`` waits): to stop several at once."""
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """SIGTERM to its group; SIGKILL to what is left after 30 s."""
        for sig, grace in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log.close()


def end_with_parent() -> None:
    """In the child: SIGTERM when this process dies, even killed (Linux), so that a
    benchmark cut short leaves no gateway or worker behind."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextmanager
def started(
    name: str,
    command: Sequence[str],
    env: dict[str, str],
    *,
    ready: Callable[[], Any] | None = None,
    timeout: float = 60,
) -> Iterator[Process]:
    """``command`` running (and ``ready()`` true) for the block; stopped afterwards."""
    log = tempfile.TemporaryFile()
    popen = subprocess.Popen(
        list(command),
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=end_with_parent,
    )
    process = Process(popen, log, name)
    try:
        if ready is not None:

            def up() -> Any:
                process.check()
                return ready()

            try:
                wait_for(up, timeout, f"{name} ready")
            except TimeoutError as exc:
                raise RuntimeError(f"{exc}; its output:\n{process.output()}") from exc
        yield process
    finally:
        process.stop()


def http_up(url: str) -> bool:
    """The server answers HTTP at all (any status: a bare app has no /healthz)."""
    try:
        httpx.get(f"{url}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


@contextmanager
def gateway_process(
    database_url: str, *options: str, **extra: str
) -> Iterator[tuple[str, Process]]:
    """``billsync gateway`` on a free port, with ``options`` (``--workers 1``…; else its
    default gunicorn settings): its URL, and its process (gunicorn's master, whose
    group holds its workers)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(BIN / "billsync"), "gateway", "--port", str(port), *options]
    with started(
        "billsync gateway", command, billsync_env(database_url, **extra), ready=lambda: http_up(url)
    ) as process:
        yield url, process


@contextmanager
def gateway(database_url: str, **extra: str) -> Iterator[str]:
    """``billsync gateway`` (its default gunicorn settings) on a free port; its URL."""
    with gateway_process(database_url, **extra) as (url, _process):
        yield url


@contextmanager
def worker(database_url: str, **extra: str) -> Iterator[Process]:
    """``billsync worker``, consuming once the block starts (the caller watches the
    queue for its consumer when it matters)."""
    command = [str(BIN / "billsync"), "worker"]
    # The sync loop has nothing to pull in these benchmarks: let it look rarely.
    env = billsync_env(database_url, BILLSYNC_SYNC_POLL_SECONDS="3600", **extra)
    with started("billsync worker", command, env) as process:
        yield process


@dataclass(frozen=True)
class Tenant:
    """An organization with one connected integration, and how to reach it."""

    organization_id: str
    integration_id: str
    admin_token: str
    webhook_secret: str

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.integration_id}"


def new_tenant(
    engine: Engine, settings: Settings, modules: Sequence[str] = ("projects", "tasks", "timesheets")
) -> Tenant:
    """An organization and an active integration syncing ``modules``, made in-process."""
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        organization, token = create_organization(session, "bench")
        request = IntegrationCreate.model_validate(
            {"portal_id": f"portal-{uuid.uuid4().hex[:8]}", "modules": list(modules)}
        )
        created = connect(session, organization.id, request, settings=settings)
        assert created.webhook_secret is not None
        return Tenant(organization.id, created.integration.id, token, created.webhook_secret)


def bench_integration(engine: Engine, modules: Sequence[str]) -> str:
    """An active integration syncing ``modules``, with no webhook secret (for rows that
    apply or replay in-process, never through the gateway); its id."""
    sessions = make_sessionmaker(engine)
    org_id, integration_id = str(uuid.uuid4()), str(uuid.uuid4())
    with sessions.begin() as session:
        session.add(Organization(id=org_id, name="bench"))
        session.flush()
        session.add(
            Integration(
                id=integration_id,
                organization_id=org_id,
                portal_id=integration_id,
                status="active",
                modules=list(modules),
            )
        )
    return integration_id


class QueueWatch:
    """billsync.apply seen from outside through one long-lived pika channel (a passive
    declare is a millisecond on it, so it can be polled closely)."""

    def __init__(self, url: str) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(url))
        self._channel = self._connection.channel()

    def ready_and_consumers(self, queue: str = APPLY_QUEUE) -> tuple[int, int]:
        ok = self._channel.queue_declare(queue, passive=True).method
        return int(ok.message_count), int(ok.consumer_count)

    def publish(self, messages: Sequence[QueueMessage]) -> None:
        """Queue ``messages`` as billsync publishes them (persistent; no confirms: the
        caller waits for the depth instead)."""
        properties = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        for message in messages:
            self._channel.basic_publish(
                EVENTS_EXCHANGE,
                routing_key(message),
                message.model_dump_json().encode(),
                properties,
            )

    def close(self) -> None:
        if self._connection.is_open:
            self._connection.close()


def reset_queues(settings: Settings) -> None:
    """billsync's queues deleted and declared again, empty."""
    from tests.support import BrokerProbe
    from worker.messaging.publisher import Publisher
    from worker.messaging.topology import build_topology

    BrokerProbe(settings.broker_url).reset()
    publisher = Publisher(settings, build_topology(settings))
    try:
        publisher.declare_topology()
    finally:
        publisher.close()


def settled(engine: Engine, integration_id: str) -> int:
    """Events the worker applied or refused for the integration (its activity tally)."""
    with engine.connect() as connection:
        total = connection.scalar(
            select(
                func.coalesce(
                    func.sum(IntegrationActivity.applied + IntegrationActivity.refused), 0
                )
            ).where(IntegrationActivity.integration_id == integration_id)
        )
    return int(total or 0)


def processed(engine: Engine, integration_id: str) -> int:
    """Events the workers took for the integration, stale ones too (the dedupe ledger)."""
    with engine.connect() as connection:
        total = connection.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(ProcessedEvent.integration_id == integration_id)
        )
    return int(total or 0)


@dataclass
class Drained:
    """How `billsync worker` processes settled a queued backlog: the time from all of
    them consuming to the last event settled, the events settled in that time, the
    first one's RSS meanwhile, and the CPU seconds each part asked for used in it."""

    events: int  # the backlog
    seconds: float
    counted: int = 0  # settled within ``seconds`` (before: while workers came up)
    workers: int = 1
    stagger: float = 0.0  # seconds from the first worker consuming to the last
    rss: list[tuple[int, float]] = field(default_factory=list)  # (settled, MB)
    cpu: dict[str, float] = field(default_factory=dict)  # part: CPU seconds

    @property
    def rate(self) -> float:
        return self.counted / self.seconds


def drain(
    engine: Engine,
    database_url: str,
    settings: Settings,
    tenant: Tenant,
    messages: Sequence[QueueMessage],
    *,
    workers: int = 1,
    sample_rss: bool = False,
    cpu: dict[str, CpuPart] | None = None,
) -> Drained:
    """Queue ``messages`` (untimed), then time ``workers`` `billsync worker` processes
    (started together, one queue) settling them all, from the moment all consume.

    With ``cpu``, also the CPU seconds of those parts (and, as ``"worker"``, of the
    worker processes) over the same time."""
    n = len(messages)
    reset_queues(settings)
    watch = QueueWatch(settings.broker_url)
    try:
        watch.publish(messages)
        wait_for(lambda: watch.ready_and_consumers()[0] >= n, 300, f"{n} events queued")
        with ExitStack() as stack:
            processes = [stack.enter_context(worker(database_url)) for _ in range(workers)]
            first: list[float] = []

            def consuming() -> bool:
                for process in processes:
                    process.check()
                ready, consumers = watch.ready_and_consumers()
                if not first and (consumers > 0 or ready < n):
                    first.append(time.perf_counter())
                return consumers >= workers or (workers == 1 and ready < n)

            what = f"{workers} `billsync worker` consuming"
            wait_for(consuming, 120, what, interval=0.005)
            meter = None
            if cpu is not None:
                meter = CpuMeter({"worker": group_cpu(*(p.pid for p in processes)), **cpu})
                meter.start()
            started = time.perf_counter()
            early = settled(engine, tenant.integration_id)
            drained = Drained(n, 0.0, n - early, workers, started - first[0])

            def finished() -> bool:
                for process in processes:
                    process.check()
                done = settled(engine, tenant.integration_id)
                if sample_rss:
                    drained.rss.append((done, rss_mb(processes[0].pid)))
                if done >= n:
                    return True
                # Several workers may apply a newer version of a record before an older
                # one, then stale: in no tally. The dedupe ledger has every event taken,
                # counted at the end only (it costs more).
                return (
                    workers > 1
                    and done >= 0.9 * n
                    and processed(engine, tenant.integration_id) >= n
                )

            try:
                wait_for(finished, 120 + n / 200, f"{n} events settled", interval=0.02)
            except TimeoutError as exc:
                done = settled(engine, tenant.integration_id)
                said = "\n".join(p.output() for p in processes)
                raise RuntimeError(f"{exc} ({done} settled); the workers said:\n{said}") from exc
            drained.seconds = time.perf_counter() - started
            if meter is not None:
                drained.cpu = meter.stop()
            for process in processes:  # all stopping at once; the stack waits for each
                process.terminate()
    finally:
        watch.close()
    if not drained.counted:
        raise RuntimeError(
            f"all {n} events were settled before the {workers} workers were all consuming "
            f"({drained.stagger:.1f} s after the first): queue more"
        )
    return drained


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` now, in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# -- CPU time, read from /proc -------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """What /proc/<pid>/stat says of a process: its parent, group and CPU seconds."""

    pid: int
    ppid: int
    pgrp: int
    name: str
    cpu: float  # utime + stime, over all its threads
    reaped: float  # cutime + cstime: its children that exited and that it waited for


def proc_stat(pid: int) -> ProcStat | None:
    """Process ``pid`` now; None when it is gone (or not readable)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]  # a name may hold spaces, parentheses
    fields = raw[raw.rindex(")") + 2 :].split()  # from field 3, the state
    utime, stime, cutime, cstime = (int(f) / CLOCK_TICKS for f in fields[11:15])
    return ProcStat(pid, int(fields[1]), int(fields[2]), name, utime + stime, cutime + cstime)


def process_table() -> dict[int, ProcStat]:
    """Every process in /proc now, by pid."""
    table: dict[int, ProcStat] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            table[stat.pid] = stat
    return table


# A part of the system whose CPU seconds are counted: what it holds in a process
# table, as CPU seconds by key (one "all" key, or one a process); CpuMeter adds up
# the differences of two readings, key by key.
CpuPart = Callable[[dict[int, ProcStat]], dict[str, float]]


def group_cpu(*groups: int) -> CpuPart:
    """Processes this benchmark started (each a group of its own: a gateway's gunicorn
    workers are in its master's): every member's CPU, and what each leader reaped."""

    def read(table: dict[int, ProcStat]) -> dict[str, float]:
        members = sum(p.cpu for p in table.values() if p.pgrp in groups)
        return {"all": members + sum(table[g].reaped for g in groups if g in table)}

    return read


def tree_cpu(root: int) -> CpuPart:
    """A server: its process, its children and the children it reaped (PostgreSQL's
    postmaster forks a backend per connection and waits for each)."""

    def read(table: dict[int, ProcStat]) -> dict[str, float]:
        top = table.get(root)
        if top is None:
            raise RuntimeError(f"process {root} is gone")
        children = sum(p.cpu for p in table.values() if p.ppid == root)
        return {"all": top.cpu + top.reaped + children}

    return read


def pids_cpu(pids: Callable[[], Iterable[int]]) -> CpuPart:
    """The processes ``pids()`` names at each reading, each on its own: one that came
    after the first reading counts whole, one gone by the second not at all."""

    def read(table: dict[int, ProcStat]) -> dict[str, float]:
        return {str(pid): table[pid].cpu for pid in pids() if pid in table}

    return read


class CpuMeter:
    """CPU seconds each part used between ``start()`` and ``stop()``."""

    def __init__(self, parts: dict[str, CpuPart]) -> None:
        self.parts = parts
        self.used: dict[str, float] = {}  # by part, once stopped
        self._started: dict[str, dict[str, float]] = {}

    def _read(self) -> dict[str, dict[str, float]]:
        table = process_table()
        return {name: part(table) for name, part in self.parts.items()}

    def start(self) -> None:
        self._started = self._read()

    def stop(self) -> dict[str, float]:
        """CPU seconds by part since ``start()`` (also kept as ``used``)."""
        self.used = {}
        for name, now in self._read().items():
            before = self._started[name]
            self.used[name] = sum(value - before.get(key, 0.0) for key, value in now.items())
        return self.used


BENCH_APPLICATION = "billsync-bench"  # this process's own connections, not counted


def bench_engine(database_url: str) -> Engine:
    """An engine for this process's own queries, named so that ``server_cpu`` can leave
    its connections out of the database's."""
    return create_engine(database_url, connect_args={"application_name": BENCH_APPLICATION})


def server_cpu(engine: Engine) -> tuple[dict[str, CpuPart], list[str]]:
    """The servers' parts, as this machine's /proc shows them (``engine``: a
    ``bench_engine`` on the benchmark's database):
      ``postgresql``           the whole server: postmaster, backends of every database
                               (other work on it counts too), WAL writer, checkpointer…
      ``postgresql_database``  the backends connected to ``engine``'s database, but this
                               process's own (``bench_engine``)
      ``rabbitmq``             beam.smp, with its children
    and a note for each server whose processes are not visible here (another machine
    or a container), whose parts are left out."""
    parts: dict[str, CpuPart] = {}
    notes: list[str] = []
    with engine.connect() as connection:
        backend = int(connection.scalar(text("SELECT pg_backend_pid()")))
    mine, parent = proc_stat(backend), None
    if mine is not None and mine.name == "postgres":
        parent = proc_stat(mine.ppid)
    if parent is not None and parent.name == "postgres":
        parts["postgresql"] = tree_cpu(parent.pid)
        parts["postgresql_database"] = pids_cpu(lambda: _database_backends(engine))
    else:
        notes.append("PostgreSQL's processes are not visible here: no CPU figures for it")
    beam = _beam(urlsplit(broker_url()))
    if beam is not None:
        parts["rabbitmq"] = tree_cpu(beam)
    else:
        notes.append("RabbitMQ's beam.smp is not visible here: no CPU figures for it")
    return parts, notes


def _database_backends(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        found = connection.scalars(
            text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name <> :bench"
            ),
            {"bench": BENCH_APPLICATION},
        )
        return [int(pid) for pid in found]


def _beam(broker: SplitResult) -> int | None:
    """RabbitMQ's beam.smp: the only one, else the one listening on the broker's port."""
    if broker.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    beams = [p.pid for p in process_table().values() if p.name == "beam.smp"]
    if len(beams) <= 1:
        return beams[0] if beams else None
    listening = _listening_sockets(broker.port or 5672)
    return next((pid for pid in beams if _open_files(pid) & listening), None)


def _open_files(pid: int) -> set[str]:
    """Where the file descriptors of process ``pid`` point (``socket:[inode]``…)."""
    links: set[str] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return links
    for descriptor in descriptors:
        try:
            links.add(os.readlink(descriptor))
        except OSError:  # closed meanwhile
            continue
    return links


def _listening_sockets(port: int) -> set[str]:
    """``socket:[inode]`` of the TCP sockets listening on ``port``."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(f"socket:[{fields[9]}]")
    return found


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def standalone(title: str, measure: Callable[[], list[Any]]) -> None:
    """A row's script run by itself: measure, give the vhost back, print its table."""
    from tests.benchmarks.report import print_rows

    try:
        rows = measure()
    finally:
        servers.stop_all()
    print_rows(rows, title)
