"""`casefinder demo`: the main job end to end on built-in synthetic data.

Each step calls a stage's public API, in the order data flows: generate an extract, load and
validate it, train and register a model, promote it, score the month after the extract ends,
export the neighbourhood lists, create one demo user per role, and start the service.
Everything it writes goes under the working-state folder (`CASEFINDER_HOME`, default
`./.casefinder`).
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from casefinder.progress import progress_bar
from config.settings import Settings, load_settings

console = Console()

DEMO_USERS = (
    ("demo-data-scientist", "data_scientist"),
    ("demo-team", "team"),
    ("demo-clinician", "clinician"),
)


def demo(
    people: Annotated[int, typer.Option("--people", min=100, help="Synthetic people.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 1,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Regenerate the extract even if one exists.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by starting the web service.")
    ] = True,
) -> None:
    """Run the main job end to end on a synthetic population, ending with the service running."""
    from records import open_extract
    from records.report import print_validation
    from scoring.exports import list_table, write_export
    from scoring.run import score_month
    from scoring.store import ScoreStore
    from synthetic import SynthConfig, generate
    from training import promote, train

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
        extract = open_extract(extract_dir, settings, progress)
    print_validation(extract, console)
    month_day = extract.manifest.extract_date + timedelta(days=1)
    extract.con.close()
    if extract.n_rejected:
        raise typer.Exit(1)

    console.rule("3. Train, evaluate and register")
    with progress_bar(console) as progress:
        result = train(extract_dir, settings, progress=progress)
    console.print(result.comparison.round(3).to_string(index=False))
    if result.oracle:
        console.print(f"Model/oracle AUROC ratio: {result.oracle['ratio']:.3f}")
    console.print(f"Registered version {result.version} (run {result.run_id})")

    console.rule("4. Promote")
    promotion = promote(settings, version=str(result.version))
    for gate in promotion.gates:
        console.print(f"  {gate.name}: {'pass' if gate.passed else 'FAIL'} {gate.detail}")
    if not promotion.promoted and promotion.previous is None:
        # A demo needs a champion to score with; the refusal stays recorded on the version.
        reason = "demo: first model on synthetic data, gate refused it: " + ", ".join(
            g.name for g in promotion.failed
        )
        promotion = promote(settings, version=str(result.version), force=True, reason=reason)
        console.print(f"[yellow]Forced[/] ({reason}).")
    if promotion.promoted:
        console.print(f"Version {result.version} is now the champion.")
    else:
        console.print(f"Version {result.version} was not promoted; scoring with the champion.")

    month = f"{month_day:%Y-%m}"
    console.rule(f"5. Score {month} and build the MDT lists")
    with progress_bar(console) as progress:
        run = score_month(extract_dir, month, settings, progress=progress)
    console.print(f"Scoring run {run.run_id} stored at {run.path}")

    console.rule("6. Export the lists")
    store = ScoreStore(settings.score_store)
    table = list_table(store.people(run.run_id))
    meta = store.meta(run.run_id)
    for fmt in ("xlsx", "csv"):
        path = write_export(table, fmt, home / "demo" / "lists" / f"lists-{month}.{fmt}", meta)
        console.print(f"{len(table):,} listed people: {path}")

    _done(home, extract_dir, settings, str(table["neighbourhood"].iloc[0]), serve)


def _demo_tokens(settings: Settings, neighbourhood: str) -> list[tuple[str, str, str]]:
    """(user, role, token) for one demo user per role, replacing earlier demo users."""
    from serving.users import UserError, UserStore

    store = UserStore.of(settings)
    tokens = []
    for name, role in DEMO_USERS:
        with contextlib.suppress(UserError):  # first demo run: nothing to replace
            store.revoke(name)
        where = neighbourhood if role in ("team", "clinician") else None
        _, token = store.add(name, role, where)
        tokens.append((name, role + (f" ({where})" if where else ""), token))
    return tokens


def _done(
    home: Path, extract_dir: Path, settings: Settings, neighbourhood: str, serve: bool
) -> None:
    console.rule("Done")
    console.print(f"Extract: {extract_dir}")
    console.print(f"Working state: {home.resolve()}")
    if not serve:
        return
    from casefinder.commands.serving import serve as start_service

    url = f"http://{settings.serving.host}:{settings.serving.port}"
    console.rule("7. Service")
    console.print(f"Service: {url}  (sign in: {url}/ui/login, API schema: {url}/docs.json)")
    console.print("Demo tokens (sign in on the pages, or send 'Authorization: Bearer TOKEN'):")
    for name, role, token in _demo_tokens(settings, neighbourhood):
        console.print(f"  {role:<28} token for {name}: {token}", soft_wrap=True)
    console.print("Stop it with Ctrl-C.")
    if settings.serving.host in ("127.0.0.1", "localhost", "::1"):  # plain HTTP on loopback only
        os.environ.setdefault("CASEFINDER_SERVING__INSECURE_COOKIES", "true")
    start_service()
