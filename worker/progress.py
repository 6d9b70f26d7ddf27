"""Live progress of a pull on the terminal (rich), one line per module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from worker.pull import ProgressListener

__all__ = ["sync_progress"]


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

    def show(_run_id: int, counts: dict[str, dict[str, int]]) -> None:
        for module, figures in counts.items():
            text = ", ".join(f"{name} {value:,}" for name, value in figures.items() if value)
            if module not in tasks:
                tasks[module] = progress.add_task(module, total=None, counts=text)
            progress.update(tasks[module], counts=text)

    with progress:
        yield show
