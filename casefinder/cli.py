"""`casefinder <stage>`: one command per stage. Commands parse arguments, call the stage's public
API and print; the work itself lives in the stage packages."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from casefinder.commands import explain, features, lists, segments, serving, training
from casefinder.commands.common import console, err_console, parse_date
from casefinder.progress import progress_bar

# MLflow's per-download progress bars would interleave with ours.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

app = typer.Typer(
    help="casefinder: find older people with complex multi-agency need early.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", help="Also show MLflow's and other libraries' own log lines and warnings."
        ),
    ] = False,
) -> None:
    """casefinder: find older people with complex multi-agency need early. Libraries' log lines
    and warnings go to <home>/logs/casefinder.log (shown too with --verbose)."""
    from casefinder.logs import route_library_logs
    from config.settings import home_dir

    route_library_logs(home_dir(), verbose)


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the extract into.")],
    people: Annotated[int, typer.Option("--people", min=1, help="Number of people.")] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; same seed, same bytes.")] = 1,
    start: Annotated[str | None, typer.Option("--start", help="First day of history.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Extract date (last day).")] = None,
    messy: Annotated[
        bool, typer.Option("--messy", help="Add a small share of rows breaking each loader rule.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Generate a synthetic linked-records extract, with each person's true risk (oracle)."""
    from synthetic import SynthConfig, generate

    config = SynthConfig(
        people=people,
        seed=seed,
        start=parse_date(start, "--start") or SynthConfig.start,
        end=parse_date(end, "--end") or SynthConfig.end,
        messy=messy,
        file_format=fmt,
    )
    try:
        config.validate()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with progress_bar(console) as progress:
        summary = generate(config, out, progress=progress)
    console.print(summary.describe())


@app.command()
def validate(
    extract: Annotated[Path, typer.Argument(help="Extract folder (manifest.json + tables).")],
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Folder to write rejected rows to.")
    ] = None,
) -> None:
    """Load and check an extract. Exit 0 all rows loaded, 1 rows rejected, 2 extract unusable."""
    from config.settings import load_settings
    from records import ExtractError, open_extract, write_rejects
    from records.report import print_validation

    try:
        with progress_bar(console) as progress:
            loaded = open_extract(extract, load_settings(), progress)
    except ExtractError as exc:
        err_console.print(f"[bold red]Extract unusable:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    print_validation(loaded, console)
    if rejects is not None:
        written = write_rejects(loaded, rejects)
        console.print(f"Rejected rows written to {written}")
    raise typer.Exit(1 if loaded.n_rejected else 0)


def _register_stages() -> None:
    from casefinder.demo import demo

    for stage in (features, training, explain, lists, segments, serving):
        stage.register(app)
    app.command(name="demo")(demo)


_register_stages()


def run() -> NoReturn:
    """The `casefinder` command: run `app`, then end the process without tearing the
    interpreter down.

    Once a command has finished, Python's own shutdown frees every module and object one by
    one: 1.8 s after `train` (some 3,700 modules with MLflow's), 1.1 s after `models`, on the
    2-core machine, for nothing, as the process ends anyway. So, as Python would, stop thread
    pools and wait for non-daemon threads, run the exit handlers (MLflow's, logging's flush),
    flush stdout and stderr, then end the process with the command's exit status. An exception
    other than the command's exit takes Python's ordinary path."""
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    else:
        code = 0
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)  # what `sys.exit("message")` prints
        code = 1
    # What Python's shutdown does first: run threading's exit hooks, which tell idle thread
    # pools' workers (MLflow keeps one) to stop, then join every non-daemon thread. Joining
    # those workers before their hook runs waits forever.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # a reader that went away (`| head`)
            stream.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    run()
