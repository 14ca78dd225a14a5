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
from typing import Annotated, Any

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
    from casefinder.commands.training import print_training_result
    from casefinder.logs import routing_mlflow_prints
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
        result = train(extract_dir, settings, progress=routing_mlflow_prints(progress))
    print_training_result(result)
    console.print(f"Registered version {result.version} (MLflow run {result.run_id})")

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

    neighbourhood = str(table["neighbourhood"].iloc[0])
    console.rule(f"7. The {neighbourhood} MDT records its decisions")
    _demo_reviews(settings, store, run.run_id, month, neighbourhood)

    _done(home, extract_dir, settings, neighbourhood, serve)


# What the demo MDT decides for the top three of its list: the loop a newcomer should see.
DEMO_DECISIONS = (
    {"outcome": "accepted", "care_coordinator": "community matron"},
    {"outcome": "declined", "note": "Prefers to manage with family support."},
    {"outcome": "deferred"},
)


def _demo_reviews(settings: Settings, store: Any, run_id: str, month: str, hood: str) -> None:
    """Record `DEMO_DECISIONS` for the top of `hood`'s list (once per month), as the service
    does (stored with their audit entries), and say what next month's list will do."""
    from config.db import Database
    from config.db.reviews import read_reviews
    from features.dates import Month, add_months
    from scoring.performance import list_performance
    from serving.audit import AuditLog
    from serving.reviews import ReviewStore, check_fields, store_review
    from serving.schemas import ReviewRequest

    people = store.people(run_id)
    listed = people[(people["neighbourhood"] == hood) & people["listed"]].sort_values("rank")
    earlier = read_reviews(settings, hood)
    if len(earlier) and (earlier["month"] == month).any():
        console.print(f"Decisions for the {month} list were recorded by an earlier demo run.")
    else:
        reviews, audit = ReviewStore(Database.of(settings)), AuditLog.of(settings)
        index_date = Month(month).index_date
        for decision, row in zip(DEMO_DECISIONS, listed.itertuples(), strict=False):
            extra = {"review_month": Month.of(add_months(index_date, 1))}
            request = ReviewRequest(
                person_id=str(row.person_id), month=month,
                **decision, **(extra if decision["outcome"] == "deferred" else {}),
            )  # fmt: skip
            check_fields(request)
            stored = store_review(
                reviews, audit, request, neighbourhood=hood, probability=float(row.probability),
                listed_on=index_date.isoformat(), user="demo_team", role="team",
                action="demo.review", model_version=str(store.meta(run_id)["model"]["version"]),
            )  # fmt: skip
            console.print(f"  {stored.person_id}: {stored.outcome_words}")
    console.print(
        "Next month's list leaves the accepted person off (on the MDT caseload) and the declined "
        "one for [reviews] suppress_months, and flags the deferred one 'MDT review due'."
    )
    figures = list_performance(people, read_reviews(settings, hood), month).loc[hood]
    console.print(
        f"How the {month} list is doing: {int(figures['listed'])} listed, "
        f"{int(figures['reviewed'])} reviewed, {int(figures['accepted'])} accepted."
    )


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
    console.rule("8. Service")
    console.print(f"Service: {url}  (sign in: {url}/ui/login, API schema: {url}/docs.json)")
    console.print("Demo tokens (sign in on the pages, or send 'Authorization: Bearer TOKEN'):")
    for name, role, token in _demo_tokens(settings, neighbourhood):
        console.print(f"  {role:<28} token for {name}: {token}", soft_wrap=True)
    console.print("Stop it with Ctrl-C.")
    if settings.serving.host in ("127.0.0.1", "localhost", "::1"):  # plain HTTP on loopback only
        os.environ.setdefault("CASEFINDER_SERVING__INSECURE_COOKIES", "true")
    start_service()
