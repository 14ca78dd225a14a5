"""`casefinder demo`: the main job end to end on built-in synthetic data.

Each step calls a stage's public API, in the order data flows: generate an extract, load and
validate it, and so on through the later stages as they are built. Everything it writes goes under
the working-state folder (`CASEFINDER_HOME`, default `./.casefinder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from casefinder.progress import progress_bar
from casefinder.settings import load_settings

console = Console()


def demo(
    people: Annotated[int, typer.Option("--people", min=100, help="Synthetic people.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Regenerate the extract even if one exists.")
    ] = False,
) -> None:
    """Run the main job end to end on a synthetic population."""
    from records import load_extract
    from records.report import print_validation
    from synthetic import SynthConfig, generate

    settings = load_settings()
    home = settings.ensure_home()
    extract_dir = home / "demo" / f"extract-{people}-{seed}"

    console.rule("1. Synthetic linked records")
    if fresh or not (extract_dir / "manifest.json").exists():
        with progress_bar(console) as progress:
            config = SynthConfig(people=people, seed=seed)
            summary = generate(config, extract_dir, progress=progress)
        console.print(summary.describe())
    else:
        console.print(f"Using the extract already at {extract_dir} (--fresh to regenerate)")

    console.rule("2. Load and validate")
    with progress_bar(console) as progress:
        extract = load_extract(extract_dir, progress=progress)
    print_validation(extract, console)
    if extract.n_rejected:
        raise typer.Exit(1)

    _done(home, extract_dir)


def _done(home: Path, extract_dir: Path) -> None:
    console.rule("Done")
    console.print(f"Extract: {extract_dir}")
    console.print(f"Working state: {home.resolve()}")
