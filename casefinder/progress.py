"""Rich progress bars for the CLI, driving the stages' `progress(task, fraction)` callbacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from config.progress import ProgressFn, no_progress

__all__ = ["ProgressFn", "no_progress", "progress_bar"]


@contextmanager
def progress_bar(console: Console | None = None) -> Iterator[ProgressFn]:
    """Yield a `progress(task, fraction)` callback that shows one rich bar per task name."""
    bars = Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(task: str, fraction: float) -> None:
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=1.0)
        bars.update(tasks[task], completed=min(max(fraction, 0.0), 1.0))

    with bars:
        yield update
