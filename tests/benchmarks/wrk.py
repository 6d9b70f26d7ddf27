"""wrk, driven with pre-signed webhooks (``signed_requests.lua``).

The requests are signed here, in Python, before the run, into a file the Lua script
reads at init: wrk then spends no time signing, and the servers get distinct, valid
Standard Webhooks requests. ``deploy/ensure-wrk.sh`` installs wrk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.events import Event, webhook_body
from tests.support import signed_headers

if TYPE_CHECKING:
    from tests.benchmarks.common import CpuMeter

__all__ = ["WrkResult", "load", "run_wrk", "warm_up_seconds", "write_requests"]

LUA = Path(__file__).with_name("signed_requests.lua")
MISSING = "wrk is not installed: run `bash deploy/ensure-wrk.sh` (apt-get install wrk)"


def write_requests(path: Path, target: str, secret: str, events: Iterable[Event]) -> int:
    """One signed webhook per event, POSTed to ``target`` (a path); how many."""
    count = 0
    with path.open("w") as out:
        for event in events:
            body = webhook_body(event)
            headers = signed_headers(secret, body)
            fields = [target, body.decode(), *(f"{k}: {v}" for k, v in headers.items())]
            if any("\t" in f or "\n" in f for f in fields):
                raise ValueError(f"a request field holds a tab or newline: {fields}")
            out.write("\t".join(fields) + "\n")
            count += 1
    return count


def warm_up_seconds(seconds: float) -> float:
    """How long to warm a server up before a ``seconds`` run: a tenth of it, at least
    a second; none for runs under 5 s (smoke runs: their figures mean little anyway)."""
    return 0.0 if seconds < 5 else max(1.0, seconds / 10)


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")


def run_wrk(
    base_url: str,
    requests_file: Path,
    *,
    seconds: float,
    threads: int = 2,
    connections: int = 16,
    rate: float = 0,
) -> WrkResult:
    """wrk against ``base_url`` for ``seconds``; ``rate`` > 0 paces it (requests/s)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError(MISSING)
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url,
    ]
    env = {
        **os.environ,
        "WRK_REQUESTS": str(requests_file),
        "WRK_THREADS": str(threads),
        "WRK_RATE": str(rate),
    }
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({done.returncode}): {done.stderr.strip()[-2000:]}\n{done.stdout[-2000:]}"
        )
    figures = json.loads(line.removeprefix("BENCH_JSON "))
    latency = figures["latency_us"]
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        errors=figures["errors"],
    )


def load(
    base_url: str,
    requests_file: Path,
    *,
    seconds: float,
    threads: int = 2,
    connections: int = 16,
    meter: CpuMeter | None = None,
) -> WrkResult:
    """A warm-up (``warm_up_seconds``), then the measured run, as fast as the server
    answers; every answer must be a 2xx. ``meter`` runs over the measured run only."""
    warm = warm_up_seconds(seconds)
    if warm:
        run_wrk(base_url, requests_file, seconds=warm, threads=threads, connections=connections)
    if meter is not None:
        meter.start()
    result = run_wrk(
        base_url, requests_file, seconds=seconds, threads=threads, connections=connections
    )
    if meter is not None:
        meter.stop()
    if result.errors["status"]:
        raise RuntimeError(f"{base_url}: {result.errors['status']} answers were not 2xx")
    if not result.requests:
        raise RuntimeError(f"{base_url}: wrk completed no request")
    return result
