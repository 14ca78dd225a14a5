"""Response bodies built from what the backend returns, shared by the API (`serving.service`) and
the pages (`serving.pages`), so that neither imports the other."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from features.cohort import exclusion_sentence
from models.explain import explanation_alt
from serving.backend import PersonView, flags_of
from serving.schemas import (
    Change,
    ExcludedBecause,
    ListedPerson,
    Movement,
    PersonResponse,
    Reason,
    Review,
    Scored,
    ScoredRow,
    WhatIfResponse,
)


def reasons(items: list[Any]) -> list[Reason]:
    """`models.explain.Reason`s (or their dicts) as response reasons."""
    out = []
    for r in items:
        d = r if isinstance(r, dict) else r.__dict__
        out.append(
            Reason(
                concept=d.get("concept") or d["feature"],
                feature=d["feature"],
                domain=d["domain"],
                sentence=d["sentence"],
                value=d.get("value"),
                probability_change=d["probability_change"],
                note=d.get("note"),
            )
        )
    return out


def scored_row(e: Any, version: str) -> ScoredRow:
    """One explained feature row as /score and /score_model return it."""
    return ScoredRow(
        probability=e.probability,
        band=e.band,
        reference_probability=e.reference_probability,
        reference=e.reference,
        raising=reasons(e.raising),
        lowering=reasons(e.lowering),
        other_probability_change=e.other_probability_change,
        model_version=version,
    )


def listed_person(row: dict[str, Any], reference_probability: float | None = None) -> ListedPerson:
    """One row of a neighbourhood's list (a run row) as the API and the list page show it;
    with the run's reference, "other" makes the reasons add up to the probability."""
    payload = row.get("reasons_json")
    shown = reasons(json.loads(payload)) if payload else []
    probability = float(row["probability"])
    other = None
    if reference_probability is not None:
        other = probability - reference_probability - sum(r.probability_change for r in shown)
    return ListedPerson(
        person_id=str(row["person_id"]),
        rank=int(row["rank"]),
        probability=probability,
        band=str(row["band"]),
        flags=flags_of(row),
        reasons=shown,
        reference_probability=reference_probability,
        other_probability_change=other,
    )


def not_listed(row: dict[str, Any], meta: dict[str, Any]) -> str | None:
    """Why a person is not on the run's list, in words (None when listed): the run's first
    applicable exclusion (`features.cohort.exclusion_reason`, stored as `excluded`, worded by
    `features.cohort.EXCLUSIONS`), else their rank against the list rule."""
    from features.cohort import EXCLUSIONS

    if row.get("listed"):
        return None
    key = row.get("excluded")
    if key:
        return f"not on the list: {EXCLUSIONS.get(str(key), str(key))}"
    rank = row.get("rank")
    if rank is not None:
        return (
            f"not on the list: ranked {int(rank)} in {row['neighbourhood']}, and the list is "
            f"{meta.get('rule', 'set by the list rule')}"
        )
    return "not on the list: not scored"


def movements(items: list[Any]) -> list[Movement]:
    return [
        Movement(feature=m.feature, sentence=m.sentence, probability_change=m.probability_change)
        for m in items
    ]


def chart_svg(explanation: Any) -> str:
    """The waterfall chart of an explanation as SVG text."""
    import tempfile
    from pathlib import Path

    from models.charts import waterfall

    with tempfile.TemporaryDirectory() as tmp:
        return waterfall(explanation, Path(tmp) / "chart.svg").read_text("utf-8")


def excluded_because(row: dict[str, Any]) -> ExcludedBecause | None:
    """Why the person is off the list (`features.cohort.EXCLUSIONS`), None when not excluded."""
    key = row.get("excluded")
    if key is None:
        return None
    return ExcludedBecause(
        key=str(key), sentence=exclusion_sentence(str(key), row.get("mdt_since"))
    )


def person_response(
    version: str, view: PersonView, svg: str | None, reviews: Sequence[Review] = ()
) -> PersonResponse:
    e, c = view.explanation, view.change
    change = None
    if c is not None:
        change = Change(
            previous_month=view.previous_month,
            status=c.status,
            previous_probability=c.previous_probability,
            probability_change=c.probability_change,
            previous_band=c.previous_band,
            movements=movements(c.movements),
        )
    rank = view.row.get("rank")
    age = view.features["age"].iloc[0] if "age" in view.features.columns else None
    practice = view.row.get("gp_practice_code")
    return PersonResponse(
        model_version=version,
        run_model_version=str(view.meta["model"]["version"]),
        champion_note=view.champion_note,
        month=view.month,
        index_date=view.meta["index_date"],
        person_id=str(view.row["person_id"]),
        neighbourhood=str(view.row["neighbourhood"]),
        gp_practice_code=None if practice is None else str(practice),
        age=None if age is None or age != age else int(age),
        probability=e.probability,
        band=e.band,
        rank=None if rank is None else int(rank),
        listed=bool(view.row.get("listed")),
        flags=flags_of(view.row),
        reference_probability=e.reference_probability,
        reference=e.reference,
        raising=reasons(e.raising),
        lowering=reasons(e.lowering),
        other_probability_change=e.other_probability_change,
        not_listed=not_listed(view.row, view.meta),
        change=change,
        chart_url=f"/ui/person/{view.row['person_id']}/chart.svg?month={view.month}",
        chart_alt=explanation_alt(e),
        chart_svg=svg,
        excluded_because=excluded_because(view.row),
        reviews=list(reviews),
    )


WHAT_IF_CAVEAT = (
    "This shows how the model's estimate moves when these inputs change. It is not what an "
    "intervention would do: the model has learnt what goes with need, not what causes it."
)


def what_if_response(version: str, month: str, person_id: str, result: Any) -> WhatIfResponse:
    return WhatIfResponse(
        model_version=version,
        month=month,
        person_id=person_id,
        before=Scored(probability=result.before.probability, band=result.before.band),
        after=Scored(probability=result.after.probability, band=result.after.band),
        probability_change=result.probability_change,
        changed=result.changed,
        derived=result.derived,
        warnings=result.warnings,
        caveat=WHAT_IF_CAVEAT,
        movements=movements(result.movements),
        raising_after=reasons(result.after.raising),
    )


def public_message(message: str, settings: Any) -> str:
    """`message` with the server's folders (score store, MLflow store, home) named in words, not
    by path: error bodies and pages never show where the server keeps its data."""
    places = []
    for path, words in (
        (getattr(settings, "score_store", None), "the score store"),
        (getattr(settings, "home", None), "the casefinder home"),
    ):
        if path is not None:
            places += [(str(Path(path).resolve()), words), (str(path), words)]
    uri = str(getattr(settings, "tracking_uri", "") or "")
    if uri:
        places.append((uri, "the MLflow store"))
    for text, words in sorted(places, key=lambda p: -len(p[0])):
        if text and text not in (".", "/"):
            message = message.replace(text, words)
    return message
