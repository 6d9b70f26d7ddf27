"""The webhook gateway against a bare Flask 202 route, under wrk, per gunicorn variant.

    python -m tests.benchmarks.bench_gateway_variants [--duration 10] [--connections 16]
        [--variant gthread:2x8 --variant sync:5x1 …] [--compare OTHER_CHECKOUT]

Each variant (``<worker class>:<processes>x<threads>``) serves billsync's gateway
(``billsync gateway``) and the bare route (tests/benchmarks/bare_app.py, which runs
``billsync gateway`` with the bare app in place of the gateway's: the same gunicorn
settings), one after the other, and wrk sends both the same pre-signed
requests: every one a distinct event id with a valid Standard Webhooks signature for
an integration of a temporary database, cycled through by a Lua script (wrk's own
request loop, so the client costs little of the two cores). Prints requests/s and the
p50/p99 latencies of each, and billsync / bare. Needs wrk (deploy/ensure-wrk.sh),
PostgreSQL and RabbitMQ (as the test suite finds them).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pika
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook

from tests import servers
from tests.benchmarks.common import temporary_database
from tests.events import project, webhook_body
from tests.support import APPLY_QUEUE, wait_until

BIN = Path(sys.executable).parent
PORT = 18731

# One wrk thread keeps the client's share of the 2 cores small; each thread cycles
# through its own slice of the requests, formatted once at start.
LUA = r"""
local file = os.getenv("BENCH_REQUESTS")
local path = os.getenv("BENCH_PATH")
local threads = tonumber(os.getenv("BENCH_WRK_THREADS"))
local next_id = 0

function setup(thread)
  thread:set("slot", next_id)
  next_id = next_id + 1
end

function init(args)
  requests, n = {}, 0
  local i = 0
  for line in io.lines(file) do
    if i % threads == slot then
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      n = n + 1
      requests[n] = wrk.format("POST", path, {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }, body)
    end
    i = i + 1
  end
  at = 0
end

function request()
  at = at % n + 1
  return requests[at]
end
"""


@dataclass(frozen=True)
class Variant:
    worker_class: str
    workers: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> Variant:
        match = re.fullmatch(r"(\w+):(\d+)x(\d+)", text)
        if not match:
            raise argparse.ArgumentTypeError(f"not <class>:<workers>x<threads>: {text}")
        return cls(match[1], int(match[2]), int(match[3]))

    def __str__(self) -> str:
        return f"{self.worker_class} {self.workers}x{self.threads}"

    def gateway_args(self) -> list[str]:
        """`billsync gateway`'s options for this variant, on the benchmark's port."""
        args = ["--port", str(PORT), "--workers", str(self.workers), "--threads", str(self.threads)]
        if self.worker_class != "gthread":  # the option is newer than gthread-only gateways
            args += ["--worker-class", self.worker_class]
        return args


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


@contextmanager
def serving(command: list[str], env: dict[str, str], url: str) -> Iterator[None]:
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_until(lambda: process.poll() is not None or _up(url), timeout=60)
            if process.poll() is not None:
                log.seek(0)
                raise SystemExit(
                    f"{' '.join(command)} exited with {process.returncode}:\n"
                    + log.read().decode(errors="replace")[-3000:]
                )
            yield
        finally:
            process.terminate()
            process.wait(timeout=60)


def _up(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def write_requests(path: Path, secret: str, count: int, tag: str) -> None:
    """``count`` signed requests, one a line: id, timestamp, signature, body (tab-separated)."""
    signer = Webhook(secret)
    now = datetime.now(UTC)
    stamp = str(int(now.timestamp()))
    with path.open("w") as out:
        for n in range(count):
            msg_id = f"msg_{tag}_{n}"
            body = webhook_body(project(f"P{n}", event_id=f"e-{tag}-{n}")).decode()
            out.write(f"{msg_id}\t{stamp}\t{signer.sign(msg_id, now, body)}\t{body}\n")


def wrk(url: str, path: str, requests: Path, seconds: int, connections: int) -> Result:
    script = requests.with_suffix(".lua")
    script.write_text(LUA)
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests),
        "BENCH_PATH": path,
        "BENCH_WRK_THREADS": "1",
    }
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    out = subprocess.run(
        [*command, url], env=env, capture_output=True, text=True, check=True
    ).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Result(
        rps=float(_find(r"Requests/sec:\s+([\d.]+)", out)),
        p50_ms=_ms(_find(r"\s50%\s+([\d.]+\w+)", out)),
        p99_ms=_ms(_find(r"\s99%\s+([\d.]+\w+)", out)),
        errors=(int(errors[1]) if errors else 0)
        + (sum(int(g) for g in sockets.groups()) if sockets else 0),
    )


def _find(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    if match is None:
        raise SystemExit(f"wrk's output has no {pattern!r}:\n{text}")
    return match[1]


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def purge(broker_url: str) -> None:
    """Empty the apply queue between runs (nothing consumes it here)."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        connection.channel().queue_purge(APPLY_QUEUE)
    finally:
        connection.close()


def measure(args: argparse.Namespace, work: Path, stack: ExitStack) -> None:
    broker_url = servers.rabbitmq_url()
    env = {
        **os.environ,
        "BILLSYNC_BROKER_URL": broker_url,
        "BILLSYNC_LOG_LEVEL": "WARNING",
        # Integrations on PostgreSQL need one (they seal portal credentials with it).
        "BILLSYNC_CREDENTIAL_KEY": Fernet.generate_key().decode(),
    }
    # The gateways measured: this checkout's, and another's (its code first on the path),
    # each on a database of its own (migrated by its own code).
    gateways = {"billsync": env}
    if args.compare:
        gateways[args.compare.name] = {**env, "PYTHONPATH": str(args.compare.resolve())}
    for gateway_env in gateways.values():
        gateway_env["BILLSYNC_DATABASE_URL"] = stack.enter_context(temporary_database())
    url = f"http://127.0.0.1:{PORT}"
    runs = 0
    for variant in args.variant:
        results: dict[str, Result] = {}
        for label, gateway_env in gateways.items():
            runs += 1
            database_url = gateway_env["BILLSYNC_DATABASE_URL"]
            created = subprocess.run(  # an organization connects one portal
                [str(BIN / "billsync"), "org", "create", f"bench {runs}"],
                env=gateway_env,
                check=True,
                capture_output=True,
                text=True,
            )
            token = json.loads(created.stdout)["admin_token"]
            command = [str(BIN / "billsync"), "gateway", *variant.gateway_args()]
            with serving(command, gateway_env, url):
                answer = httpx.post(
                    f"{url}/api/v1/integrations",
                    json={"portal_id": f"{make_url(database_url).database}-{runs}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if answer.status_code != 201:
                    raise SystemExit(f"cannot create an integration: {answer.text}")
                integration = answer.json()
                requests = work / f"requests-{runs}.tsv"
                write_requests(requests, integration["webhook_secret"], args.requests, f"{runs}")
                path = f"/webhooks/{integration['id']}"
                wrk(url, path, requests, args.warmup, args.connections)
                results[label] = wrk(url, path, requests, args.duration, args.connections)
            purge(broker_url)
        # `billsync gateway` serving the bare app: the very same gunicorn settings.
        bare = [sys.executable, "-m", "tests.benchmarks.bare_app", *variant.gateway_args()]
        with serving(bare, gateways["billsync"], url):
            wrk(url, "/webhooks/x", requests, args.warmup, args.connections)
            baseline = wrk(url, "/webhooks/x", requests, args.duration, args.connections)
        _print(variant, results, baseline)


def _print(variant: Variant, gateways: dict[str, Result], bare: Result) -> None:
    def cell(r: Result) -> str:
        errors = f" ({r.errors} errors)" if r.errors else ""
        return f"{r.rps:>7,.0f} req/s  p50 {r.p50_ms:>5.1f} ms  p99 {r.p99_ms:>6.1f} ms{errors}"

    print(f"{variant}", flush=True)
    for label, result in gateways.items():
        print(f"  {label:<16} {cell(result)}  {result.rps / bare.rps:.2f}x bare", flush=True)
    print(f"  {'bare Flask':<16} {cell(bare)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds measured")
    parser.add_argument("--warmup", type=int, default=3, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=60_000, help="distinct signed requests")
    parser.add_argument(
        "--variant", type=Variant.parse, action="append", help="<class>:<workers>x<threads>"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout (e.g. `git archive HEAD | tar -x -C DIR`) whose gateway is "
        "measured in the same run",
    )
    args = parser.parse_args()
    args.variant = args.variant or [Variant("gthread", 2, 8)]
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: bash deploy/ensure-wrk.sh")
    print(f"wrk: 1 thread, {args.connections} connections, {args.duration} s per server")
    try:
        with ExitStack() as stack, tempfile.TemporaryDirectory() as work:
            measure(args, Path(work), stack)
    finally:
        servers.stop_all()


if __name__ == "__main__":
    main()
