"""Live progress on the terminal (rich): a pull per module, a replay as a bar, a prune
per table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from worker.db import Pruned
from worker.pull import ProgressListener

__all__ = ["prune_progress", "replay_progress", "sync_progress"]


@contextmanager
def sync_progress() -> Iterator[ProgressListener]:
    """A listener for ``PullRunner(on_progress=…)`` that draws per-module counts on stderr."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<11}"),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: dict[str, TaskID] = {}

    def show(_run_id: int, counts: dict[str, dict[str, Any]]) -> None:
        for module, figures in counts.items():
            text = ", ".join(_figure(name, value) for name, value in figures.items() if value)
            if module not in tasks:
                tasks[module] = progress.add_task(module, total=None, counts=text)
            progress.update(tasks[module], counts=text)

    with progress:
        yield show


def _figure(name: str, value: Any) -> str:
    if isinstance(value, dict):  # invalid_fields: {"owner.email": 3}
        return f"{name} " + " ".join(f"{k}×{v:,}" for k, v in value.items())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} {value}"
    return f"{name} {value:,.0f}"


@contextmanager
def replay_progress() -> Iterator[Callable[[int, int], None]]:
    """A listener for ``replay(on_progress=…)``: a bar with count, rate and ETA."""
    progress = Progress(
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}/s"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    task = progress.add_task("replay", total=None, rate="–")

    def show(done: int, total: int) -> None:
        elapsed = progress.tasks[0].elapsed or 0
        rate = f"{done / elapsed:,.0f}" if elapsed else "–"
        progress.update(task, completed=done, total=total, rate=rate)

    with progress:
        yield show


@contextmanager
def prune_progress() -> Iterator[Callable[[Pruned], None]]:
    """A listener for ``prune(on_progress=…)``: a line per table with what it lost so far."""
    progress = Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description:<18}"),
        TextColumn("{task.fields[done]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: dict[str, TaskID] = {}

    def show(pruned: Pruned) -> None:
        done = f"{pruned.removed:,} rows"
        if pruned.dropped:
            done += f" ({len(pruned.dropped)} partitions dropped)"
        if pruned.renewed:
            done += f", {pruned.renewed:,} held ids renewed"
        if pruned.table not in tasks:
            for earlier in tasks.values():  # the prune goes one table after the other
                progress.update(earlier, total=1, completed=1)
            tasks[pruned.table] = progress.add_task(pruned.table, total=None, done=done)
        progress.update(tasks[pruned.table], done=done)

    with progress:
        yield show
        for task in tasks.values():
            progress.update(task, total=1, completed=1)
