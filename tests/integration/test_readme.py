"""The README's walkthrough runs as written: the sh blocks of "Five minutes with
billsync" and "Connect a portal", in order, in one bash, against ``billsync run`` on a
fresh data directory (embedded: SQLite, no servers) and the fake portal.

The only changes to the commands: free ports in place of 8080 and 8090, and curl
fails on an HTTP error (``--fail-with-body``), so a wrong id or a refused request
fails the test instead of printing an error body nobody reads."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen
from typing import Any

from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("## Five minutes with billsync", "## Connect a portal")
GATEWAY, PORTAL = "127.0.0.1:8080", "127.0.0.1:8090"
PREAMBLE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def walkthrough() -> str:
    """The sh blocks of the README's two walkthrough sections, in order."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for heading in SECTIONS:
        start = text.index(heading)
        # To the next heading of any level: "Zoho accounts" needs a real Zoho account.
        following = re.search(r"^#{2,3} ", text[start + len(heading) :], re.M)
        end = start + len(heading) + following.start() if following else len(text)
        blocks += re.findall(r"```sh\n(.*?)```", text[start:end], re.S)
    return "\n".join(blocks)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without the suite's BILLSYNC_* settings: embedded mode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    return {**env, "BILLSYNC_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra}


@contextmanager
def group(command: list[str], work: Path, env: dict[str, str], out: Any) -> Iterator[Popen[str]]:
    """A process in its own process group, ended with everything it started."""
    process = subprocess.Popen(
        command,
        cwd=work,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        _end(process)


def _end(process: Popen[str]) -> None:
    """SIGTERM to the group, SIGKILL to what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(15)
            return
        except subprocess.TimeoutExpired:
            continue


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    gateway, portal = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))
    env = clean_env(tmp_path / "data", BILLSYNC_PORTAL_ALLOWED_HOSTS=portal)
    script = PREAMBLE + walkthrough().replace(GATEWAY, gateway).replace(PORTAL, portal)
    script = script.replace("--port 8090", f"--port {portal.rsplit(':', 1)[1]}")
    server = [str(work / ".venv/bin/billsync"), "run", "--port", gateway.rsplit(":", 1)[1]]

    log = tmp_path / "billsync-run.log"
    with log.open("w") as server_log, group(server, work, env, server_log):
        wait_until(lambda: answers(f"http://{gateway}/healthz"), timeout=60)
        with group(["bash", "-c", script], work, env, subprocess.PIPE) as shell:
            output, _ = shell.communicate(timeout=240)

    assert shell.returncode == 0, f"{output[-4000:]}\n--- billsync run:\n{log.read_text()[-3000:]}"
    assert '"name":"Website relaunch"' in output, "the resume run brought the rename"
    assert '"released_timesheet_ids"' in output, "the invoice was voided"
