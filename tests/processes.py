"""billsync's production processes in tests: `billsync worker` and `billsync gateway` as
subprocesses, their settings in the environment and their JSON log in a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from worker.settings import Settings

__all__ = ["BillsyncProcess", "billsync_env", "spawned"]

BILLSYNC = [sys.executable, "-m", "worker.cli"]


def billsync_env(settings: Settings, **overrides: object) -> dict[str, str]:
    """The environment of a billsync process on ``settings``' servers: no ``BILLSYNC_*``
    variable of the test run's own, ``overrides`` by setting name (``batch_size=20``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env.update(
        {
            "BILLSYNC_DATA_DIR": str(settings.data_dir),
            "BILLSYNC_DATABASE_URL": settings.database_url,
            "BILLSYNC_BROKER_URL": settings.broker_url,
            "BILLSYNC_CREDENTIAL_KEY": settings.credential_key.get_secret_value(),
            "BILLSYNC_METRICS_PORT": "0",
            "BILLSYNC_LOG_LEVEL": "INFO",
        }
    )
    env.update({f"BILLSYNC_{name.upper()}": str(value) for name, value in overrides.items()})
    return env


@dataclass
class BillsyncProcess:
    """One running billsync command; its stdout and stderr go to ``log``."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def entries(self) -> list[dict[str, Any]]:
        """The JSON log lines (billsync's own), in order; other lines are left out."""
        found = []
        for line in self.text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found.append(entry)
        return found

    def terminate(self) -> None:
        self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)


@contextmanager
def spawned(arguments: list[str], env: dict[str, str], log: Path) -> Iterator[BillsyncProcess]:
    """``billsync ARGUMENTS`` for the block; killed afterwards if it is still running."""
    with ExitStack() as stack:
        output = stack.enter_context(log.open("wb"))
        popen = subprocess.Popen(
            [*BILLSYNC, *arguments], env=env, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            yield BillsyncProcess(popen, log)
        finally:
            if popen.poll() is None:
                popen.kill()
            popen.wait(30)
