"""`casefinder explain`: why a person has their score, what changed since an earlier month, and
what-if; writes the reasons (JSON) and waterfall charts, and optionally the model's global
importance chart. The work lives in models.explain and models.charts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from casefinder.commands.common import console, fail, parse_date
from casefinder.progress import progress_bar

IMPORTANCE_SAMPLE = 5000  # people drawn (seeded) for the global importance chart


def _parse_what_if(items: list[str]) -> dict[str, float | None]:
    changes: dict[str, float | None] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise typer.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--what-if")
        text = value.strip().lower()
        if text in ("", "none", "never"):
            changes[name.strip()] = None
            continue
        try:
            changes[name.strip()] = float(text)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r}: {value!r} is not a number", param_hint="--what-if"
            ) from None
    return changes


def _print_explanation(e: Any, version: str) -> None:
    from casefinder.tables import print_table
    from models.reasons import format_points

    console.print(
        f"\n[bold]Person {e.person_id}[/]: {100 * e.probability:.1f}% ([bold]{e.band}[/]), "
        f"against {100 * e.reference_probability:.1f}%, the average for {e.reference} "
        f"(model v{version})"
    )
    rows = [
        [label, r.domain, r.sentence + (f" ({r.note})" if r.note else ""),
         format_points(r.probability_change)]
        for label, reasons in (("raises", e.raising), ("lowers", e.lowering))
        for r in reasons
    ]  # fmt: skip
    rows.append(["", "", "all other factors", format_points(e.other_probability_change)])
    print_table(console, ["", "Domain", "Reason", "Size"], rows)


def _feature_rows(extract: Any, day: Any, progress: Any) -> Any:
    import features

    features.check_index_date(extract.manifest, day)
    return features.build_features(extract, day, progress=progress)


def explain(
    extract: Annotated[Path, typer.Argument(help="Extract folder (manifest.json + tables).")],
    index_date: Annotated[str, typer.Option("--index-date", help="Index date, YYYY-MM-DD.")],
    person: Annotated[
        list[str], typer.Option("--person", help="Pseudonymised person id (repeatable).")
    ],
    model: Annotated[
        str, typer.Option("--model", help="Version number or alias (default: champion).")
    ] = "champion",
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for reasons JSON and charts.")
    ] = None,
    top: Annotated[int, typer.Option("--top", min=1, help="Reasons each way.")] = 5,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Earlier index date: also show what changed since then."),
    ] = None,
    what_if: Annotated[
        list[str] | None,
        typer.Option("--what-if", help="NAME=VALUE for an adjustable feature (repeatable)."),
    ] = None,
    importance: Annotated[
        bool, typer.Option("--importance", help="Also write the model's global importance chart.")
    ] = False,
) -> None:
    """Explain the score of one or more people at an index date in plain words."""
    from config.settings import load_settings
    from features import FeatureError
    from models import charts
    from models import explain as ex
    from models.reasons import format_points
    from models.registry import RegistryError, load_risk_model
    from records import ExtractError, open_extract

    day = parse_date(index_date, "--index-date")
    earlier = parse_date(since, "--since")
    assert day is not None
    changes = _parse_what_if(what_if or [])
    settings = load_settings()
    try:
        risk_model, version = load_risk_model(settings, model)
        with progress_bar(console) as progress:
            loaded = open_extract(extract, settings, progress)
            rows = _feature_rows(loaded, day, progress)
            previous = _feature_rows(loaded, earlier, progress) if earlier else None
    except (RegistryError, FeatureError, ExtractError) as exc:
        raise fail(str(exc)) from None

    wanted = list(dict.fromkeys(person))
    ids = rows["person_id"].astype(str)
    unknown = [p for p in wanted if p not in set(ids)]
    if unknown:
        raise fail(f"not among the {len(rows):,} eligible people at {day}: {', '.join(unknown)}")
    chosen = rows[ids.isin(wanted)]
    try:
        # Measured against everyone a run at this index date scores (the run's own rule).
        ref = ex.population_reference(
            risk_model, ex.scored_rows(rows, settings.lists),
            description=ex.reference_words(str(day)),
        )  # fmt: skip
        explanations = ex.explain(risk_model, chosen, top_n=top, reference=ref)
        results: dict[str, dict[str, Any]] = {
            str(e.person_id): {"model_version": version, "index_date": str(day), **e.to_dict()}
            for e in explanations
        }
        for e in explanations:
            _print_explanation(e, version)
            if changes:
                row = chosen[chosen["person_id"].astype(str) == str(e.person_id)]
                result = ex.what_if(risk_model, row, changes, top_n=top, reference=ref)
                results[str(e.person_id)]["what_if"] = result.to_dict()
                console.print(
                    f"What if {', '.join(f'{k}={v}' for k, v in changes.items())}: "
                    f"{100 * result.before.probability:.1f}% → "
                    f"{100 * result.after.probability:.1f}% "
                    f"({format_points(result.probability_change)}, {result.after.band})"
                )
        if previous is not None:
            before = previous[previous["person_id"].astype(str).isin(wanted)]
            for c in ex.changes(risk_model, before, chosen, top_n=top):
                results[str(c.person_id)]["since"] = {"index_date": str(earlier), **c.to_dict()}
                if c.status != "both":
                    console.print(f"Person {c.person_id}: not scored at {earlier}")
                    continue
                console.print(
                    f"Since {earlier}: {100 * c.previous_probability:.1f}% → "
                    f"{100 * c.probability:.1f}% ({format_points(c.probability_change)})"
                )
                for m in c.movements:
                    console.print(f"  {m.sentence} ({format_points(m.probability_change)})")
    except ValueError as exc:
        raise fail(str(exc)) from None

    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    for e in explanations:
        pid = str(e.person_id)
        (out / f"{pid}.json").write_text(json.dumps(results[pid], indent=2) + "\n")
        for suffix in (".png", ".svg"):
            charts.waterfall(e, out / f"{pid}-waterfall{suffix}")
    if importance:
        sample = rows.sample(min(len(rows), IMPORTANCE_SAMPLE), random_state=0)
        charts.global_importance(risk_model, sample, out / f"importance-v{version}.png")
    console.print(f"Reasons and charts written to {out}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to `app`."""
    app.command(name="explain")(explain)
