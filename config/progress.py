"""The progress callback the stages take, `progress(task, fraction)`, so they stay free of any
terminal library; the CLI passes one that drives rich progress bars (`casefinder.progress`)."""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[str, float], None]


def no_progress(task: str, fraction: float) -> None:
    """A progress callback that does nothing."""
