"""Ingest throughput: signed, validated, broker-confirmed webhooks against a bare route.

    python -m tests.benchmarks.bench_ingest [--requests 3000] [--concurrency 16]

Both servers run the same way (gunicorn, 2 gthread workers × 8 threads) and get
the same pre-signed requests from the same client; the target for the gateway is
≥ 0.6 × the bare route. Needs PostgreSQL and RabbitMQ (as the test suite finds them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests import servers
from tests.benchmarks.common import temporary_database
from tests.events import project, webhook_body
from tests.support import signed_headers, wait_until

BIN = Path(sys.executable).parent


@contextmanager
def serving(command: list[str], port: int, env: dict[str, str]) -> Iterator[str]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(url), timeout=30)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _up(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False


def _blast(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> float:
    chunks = [requests[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[tuple[bytes, dict[str, str]]]) -> int:
        ok = 0
        with httpx.Client(timeout=30) as client:
            for body, headers in chunk:
                ok += client.post(url, content=body, headers=headers).status_code == 202
        return ok

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        accepted = sum(pool.map(worker, chunks))
    elapsed = time.perf_counter() - started
    if accepted != len(requests):
        raise SystemExit(f"only {accepted} of {len(requests)} requests got 202 from {url}")
    return len(requests) / elapsed


def _measure(args: argparse.Namespace, database_url: str) -> dict[str, float]:
    """Requests/s of the gateway and of the bare route."""
    env = {
        **os.environ,
        "BILLSYNC_DATABASE_URL": database_url,
        "BILLSYNC_BROKER_URL": servers.rabbitmq_url(),
        "BILLSYNC_LOG_LEVEL": "WARNING",
    }
    name = make_url(database_url).database
    billsync = [str(BIN / "billsync")]
    created = subprocess.run(
        [*billsync, "org", "create", "bench"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    token = json.loads(created.stdout)["admin_token"]
    rates: dict[str, float] = {}
    port = 18711
    with serving([*billsync, "gateway", "--port", str(port)], port, env) as url:
        integration = httpx.post(
            f"{url}/api/v1/integrations",
            json={"portal_id": name},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        target = f"{url}/webhooks/{integration['id']}"
        requests = []
        for n in range(args.requests):
            body = webhook_body(project(f"P{n}", event_id=f"e-{n}"))
            requests.append((body, signed_headers(integration["webhook_secret"], body)))
        _blast(target, requests[:200], args.concurrency)  # warm-up (and dedupe later)
        rates["gateway"] = _blast(target, requests, args.concurrency)
    bare = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "--threads",
        "8",
        "-k",
        "gthread",
        "-b",
        f"127.0.0.1:{port + 1}",
        "tests.benchmarks.bare_app:app",
    ]
    with serving(bare, port + 1, env) as url:
        target = f"{url}/webhooks/x"
        _blast(target, requests[:200], args.concurrency)
        rates["bare route"] = _blast(target, requests, args.concurrency)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    try:
        with temporary_database() as database_url:
            rates = _measure(args, database_url)
    finally:
        servers.stop_all()
    print(f"ingest, {args.requests} signed webhooks, {args.concurrency} concurrent clients")
    for label, rate in rates.items():
        print(f"  {label:<11} {rate:>8,.0f} requests/s")
    print(f"  gateway / bare route = {rates['gateway'] / rates['bare route']:.2f}x (target >= 0.6)")


if __name__ == "__main__":
    main()
