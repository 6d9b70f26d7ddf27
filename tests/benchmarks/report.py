"""What a benchmark row is (its figures, baselines and targets), the sizes the rows run
at, and how rows are shown (a rich table) and kept (JSON with the machine and command).

Every figure is measured in the run that reports it; only the targets are constants.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

__all__ = [
    "FULL",
    "SIZES",
    "SMOKE",
    "Figure",
    "Row",
    "Size",
    "Target",
    "machine",
    "print_rows",
    "write_json",
]


@dataclass(frozen=True)
class Size:
    """How much work each row does: ``full`` for the figures, ``smoke`` to keep them alive."""

    name: str
    ingest_seconds: float  # wrk run per server (gateway, bare route)
    ingest_requests: int  # distinct pre-signed webhooks wrk cycles through
    worker_events: int  # realistic events the worker drains
    per_event_events: int  # of those, applied one transaction each (the slow baseline)
    e2e_seconds: float  # the sustained end-to-end run
    e2e_rate: int  # webhooks/s offered during it
    seed_projects: int  # status: projects, 10 tasks each, stored before the run
    seed_time_logs: int  # status: time logs stored before the run
    seed_errors: int  # status: open errors stored before the run
    pull_projects: int  # initial pull of the fake portal
    dead_letters: int  # replayed by `billsync dlq replay --all`
    rss_events: int  # drained while the worker's RSS is sampled


FULL = Size(
    name="full",
    ingest_seconds=30,
    ingest_requests=40_000,
    worker_events=20_000,
    per_event_events=2_000,
    e2e_seconds=30,
    e2e_rate=500,
    seed_projects=1_000,
    seed_time_logs=1_000_000,
    seed_errors=50_000,
    pull_projects=200,
    dead_letters=20_000,
    rss_events=100_000,
)
SMOKE = Size(
    name="smoke",
    ingest_seconds=2,
    ingest_requests=2_000,
    worker_events=2_000,
    per_event_events=100,
    e2e_seconds=2,
    e2e_rate=500,
    seed_projects=20,
    seed_time_logs=10_000,
    seed_errors=1_000,
    pull_projects=3,
    dead_letters=1_000,
    rss_events=3_000,
)
SIZES = {size.name: size for size in (FULL, SMOKE)}


@dataclass(frozen=True)
class Figure:
    """One measured number. A baseline is measured in the same run, for comparison."""

    key: str
    label: str
    value: float
    unit: str
    baseline: bool = False

    def shown(self) -> str:
        return f"{self.label} {_number(self.value)} {self.unit}"


@dataclass(frozen=True)
class Target:
    """A goal: ``value`` (a figure or a ratio of two) against ``bound``."""

    label: str
    value: float
    op: Literal[">=", "<="]
    bound: float
    unit: str  # "×" marks a ratio

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    @property
    def is_ratio(self) -> bool:
        return self.unit == "×"

    def shown(self) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        mark = "[green]✔[/]" if self.met else "[red]✘[/]"
        bound = f"{self.bound:g}×" if self.is_ratio else f"{_number(self.bound)} {self.unit}"
        return f"{self.label} {sign} {bound} {mark}".strip()


@dataclass
class Row:
    """One line of the table: what was measured, against what, and the targets."""

    key: str
    what: str
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    ratios: dict[str, float] = field(default_factory=dict)  # figure / baseline
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def figure(self, key: str) -> float:
        return next(f.value for f in self.figures if f.key == key)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for target, shown in zip(data["targets"], self.targets, strict=True):
            target["met"] = shown.met
        data["met"] = self.error is None and all(t.met for t in self.targets)
        return data


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:,.1f}"
    return f"{value:.2f}"


def print_rows(rows: list[Row], title: str, console: Console | None = None) -> None:
    """The table: one row each, measured figures, same-run baselines, ratios, targets."""
    table = Table(title=title, show_lines=True)
    for column in ("row", "what", "measured", "baseline (same run)", "ratio", "target"):
        table.add_column(column, overflow="fold")
    for row in rows:
        if row.error is not None:
            table.add_row(row.key, row.what, f"[red]failed: {row.error}[/]", "", "", "")
            continue
        measured = "\n".join(f.shown() for f in row.figures if not f.baseline)
        if row.notes:
            measured += "\n[dim]" + "\n".join(row.notes) + "[/]"
        baseline = "\n".join(f.shown() for f in row.figures if f.baseline) or "—"
        ratios = "\n".join(f"{value:.2f}× {label}" for label, value in row.ratios.items())
        targets = "\n".join(t.shown() for t in row.targets) or "—"
        table.add_row(row.key, row.what, measured, baseline, ratios or "—", targets)
    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a log: wide enough not to fold every cell
            console = Console(width=max(console.width, 160))
    console.print(table)


def machine() -> dict[str, Any]:
    """Where the figures were measured: cores, CPU, memory, versions of what ran."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    wrk = shutil.which("wrk")
    if wrk:
        info["wrk"] = _first_line([wrk, "--version"])
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def write_json(
    path: Path,
    rows: list[Row],
    size: Size,
    command: str,
    servers: dict[str, str],
    seconds: float,
) -> None:
    """Every figure, with when, where (machine, server versions) and how it was run."""
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "run_seconds": round(seconds, 1),
        "size": asdict(size),
        "machine": {**machine(), "servers": servers},
        "rows": [row.as_json() for row in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
