"""A monthly scoring run: `make_run` is the pure step (frames, model and settings in, a
`ScoringRun` out); `score_month` is the small I/O layer around it (registry, extract, store).
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import ListSettings, ReviewSettings, SegmentSettings, Settings
from features.cohort import exclusion_columns, review_status
from features.dates import Month
from features.segments import columns_read
from models.risk_model import RiskModel
from scoring.drift import drift_table, main_features
from scoring.inputs import SpooledInputs, model_inputs, spool_inputs, withhold_unscored
from scoring.rules import PERSON_COLUMNS, build_list, capacities, exclusion_counts
from scoring.segments import segment_people, segments_meta
from scoring.store import ScoreStore, ScoringRun, StoreError
from scoring.summary import neighbourhood_counts, render_summary, score_distribution

if TYPE_CHECKING:
    from records import Extract


@dataclass(frozen=True)
class ModelInfo:
    """Which registered model version scored the run."""

    name: str
    version: str


@dataclass(frozen=True)
class RunResult:
    """What `score_month` did: the run id, where it is stored, and whether it was reused."""

    run_id: str
    month: str
    path: Path
    reused: bool
    meta: dict[str, Any]
    # Later months scored before this run: their lists' flags follow it now, their stored
    # summaries' month-on-month counts only once they are scored again.
    later_months: tuple[str, ...] = ()


def later_months(store: ScoreStore, month: str) -> tuple[str, ...]:
    """Months after `month` whose current run was computed against other earlier runs."""
    return tuple(
        m
        for m in store.months()
        if m > month and store.meta(store.resolve(month=m))["history_changed"]
    )


def rule_text(rules: ListSettings) -> str:
    """The list rule in words, for summaries and exports."""
    if rules.mode == "threshold":
        return f"everyone with probability ≥ {rules.threshold:g}"
    text = f"top {rules.capacity} per neighbourhood"
    if rules.capacity_by_neighbourhood:
        overrides = ", ".join(
            f"{k} {v}" for k, v in sorted(rules.capacity_by_neighbourhood.items())
        )
        text += f" ({overrides})"
    return text


def extract_fingerprint(path: Path) -> str:
    """SHA-256 over the names and bytes of the extract's files (manifest and tables)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).iterdir() if p.is_file()):
        if file.suffix not in (".json", ".csv", ".parquet"):
            continue
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def run_id_for(
    month: str,
    model: ModelInfo,
    extract_fp: str,
    rules: ListSettings,
    segments: SegmentSettings | None = None,
    history: dict[str, str] | None = None,
    reviews_fp: str | None = None,
) -> str:
    """Deterministic run id: same month, model version, extract, list rules, segment settings,
    earlier months' current runs (`history`, which the month-on-month flags follow) and MDT
    decisions it follows (`reviews_fingerprint`), same id."""
    digest = hashlib.sha256(
        json.dumps(
            [
                Month(month),
                model.name,
                model.version,
                extract_fp,
                rules.model_dump(),
                *([] if segments is None else [{"segments": segments.model_dump()}]),
                *([] if not history else [{"history": history}]),
                *([] if reviews_fp is None else [{"reviews": reviews_fp}]),
            ],
            sort_keys=True,
        ).encode()
    ).hexdigest()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", model.name)
    return f"{Month(month)}_{name}-v{model.version}_{digest[:12]}"


def reviews_fingerprint(
    reviews: pd.DataFrame | None, month: str, rules: ReviewSettings
) -> str | None:
    """SHA-256 of the reviews a month's run follows (those of earlier months) and the
    `[reviews]` rules; None when there are none (run ids stay what they were before reviews)."""
    if reviews is None or not len(reviews):
        return None
    earlier = reviews[reviews["month"].astype(str) < Month(month)].sort_values("id")
    if not len(earlier):
        return None
    body = earlier.drop(columns=["created"], errors="ignore").to_json(orient="records")
    return hashlib.sha256((body + json.dumps(rules.model_dump())).encode()).hexdigest()


def _reason_columns(explanations: Iterable[Any], top: int) -> tuple[list[str], list[str]]:
    texts, payloads = [], []
    for e in explanations:
        raising = e.raising[:top]
        texts.append("; ".join(r.sentence for r in raising))
        payloads.append(
            json.dumps(
                [
                    {
                        "concept": r.concept,
                        "feature": r.feature,
                        "domain": r.domain,
                        "sentence": r.sentence,
                        "value": r.value,
                        "probability_change": round(r.probability_change, 6),
                        "note": r.note,
                    }
                    for r in raising
                ]
            )
        )
    return texts, payloads


def run_reference(people: pd.DataFrame, month: str) -> tuple[float | None, str]:
    """(the run's reference probability, who it is in words): the mean served probability of
    everyone the run scored (None when nobody was)."""
    from models.explain import reference_words

    scored = people["probability"].dropna()
    return (float(scored.mean()) if len(scored) else None), reference_words(str(month))


def drift_columns(model: RiskModel, rules: ListSettings) -> list[str]:
    """The features whose drift a run measures: `[lists] drift_features`, else the model's
    `drift_top_features` main features by gain."""
    if rules.drift_features is not None:
        return list(rules.drift_features)
    importance = model.booster.feature_importance(importance_type="gain")
    return main_features(model.feature_names, list(importance), rules.drift_top_features)


def rule_columns(
    model: RiskModel, rules: ListSettings, segment_rules: SegmentSettings
) -> list[str]:
    """The feature-table columns `make_run` reads besides the model inputs: the ids, the
    exclusions', the segments' and the drift's (what a Spark run keeps on the driver)."""
    wanted = [*PERSON_COLUMNS, *exclusion_columns(), *columns_read(segment_rules)]
    return list(dict.fromkeys([*wanted, *drift_columns(model, rules)]))


def _drift(
    model: RiskModel,
    features: pd.DataFrame,
    scored: np.ndarray,
    probability: np.ndarray,
    training: pd.DataFrame | None,
    rules: ListSettings,
) -> tuple[pd.DataFrame | None, str | None]:
    """Drift of the scored rows of `features` (`scored`, a mask) from the training sample."""
    if training is None or not len(training):
        return None, "no training sample for this model version"
    if not scored.any():
        return None, "nobody was scored"
    columns = drift_columns(model, rules)
    expected = pd.DataFrame({"score": model.predict_proba(training)})
    actual = pd.DataFrame({"score": probability})
    for column in columns:
        expected[column] = training[column].astype(float).to_numpy()
        actual[column] = features[column].to_numpy(dtype=float)[scored]
    table = drift_table(
        expected, actual, ["score", *columns], rules.drift_warning_psi, rules.drift_bins
    )
    return table, None


def make_run(
    *,
    month: str,
    features: pd.DataFrame,
    ineligible: pd.DataFrame,
    model: RiskModel,
    model_info: ModelInfo,
    extract: dict[str, Any],
    rules: ListSettings,
    previous: pd.DataFrame | None = None,
    listed_before: Iterable[str] = (),
    training_sample: pd.DataFrame | None = None,
    training_note: str | None = None,
    feature_defs: Any = None,
    created: datetime | None = None,
    progress: ProgressFn | None = None,
    segment_rules: SegmentSettings | None = None,
    history: dict[str, str] | None = None,
    reviews: pd.DataFrame | None = None,
    review_rules: ReviewSettings | None = None,
    probability: np.ndarray | None = None,
    inputs: SpooledInputs | None = None,
) -> ScoringRun:
    """Score, rank, list, flag, explain and summarise one month (no I/O).

    `features`: the eligible population at the month's index date (person_id, neighbourhood,
    gp_practice_code, model inputs and the non-model list columns); `ineligible`: person_id,
    neighbourhood, reason for everyone in the extract who is not eligible; `extract`: manifest
    facts (extract_date, complete_to, fingerprint, path); `previous`: last month's current run
    (person_id, probability, listed, and segment when it has one); `feature_defs`: feature
    definitions for the reasons (default the features registry); `segment_rules`: the
    `[segments]` settings (default `SegmentSettings()`); `history`: the current run of each
    earlier month, which `previous` and `listed_before` come from (`ScoreStore.history`);
    `reviews`: the MDT reviews table (`config.db.reviews.read_reviews`), whose decisions the
    list follows under `review_rules` (`[reviews]`, `features.cohort.review_status`);
    `probability`: the model's probability for each row of `features`, when it was computed
    elsewhere (on Spark executors, `models.spark_scoring`; default: scored here); `inputs`: the
    model inputs of `features`' rows spooled to disk (`scoring.inputs`), `features` then holding
    only the `rule_columns` and `probability` required (a Spark run).
    """
    progress = progress or no_progress
    month = Month(month)
    created = created or datetime.now(UTC)
    features = features.reset_index(drop=True)
    segment_rules = segment_rules or SegmentSettings()
    history = history or {}
    review_rules = review_rules or ReviewSettings()
    run_id = run_id_for(
        month, model_info, extract["fingerprint"], rules, segment_rules, history,
        reviews_fingerprint(reviews, month, review_rules),
    )  # fmt: skip

    progress("scoring", 0.0)
    if inputs is not None:  # the model inputs stay on disk: read back for reasons and storing
        if probability is None:
            raise ValueError("spooled model inputs need their precomputed probabilities")
        if inputs.rows != len(features):
            raise ValueError(f"{inputs.rows:,} spooled input rows for {len(features):,} people")
        values = None
    else:
        values = model.matrix(features)  # one float copy: scored, stored and the reference's
    if probability is None:
        probability = model.predict_proba(values) if len(features) else np.empty(0)
    elif len(probability) != len(features):
        raise ValueError(
            f"{len(probability):,} precomputed probabilities for {len(features):,} people"
        )
    probability = np.asarray(probability, dtype=float)
    band = model.band(probability) if len(features) else np.empty(0, dtype=object)
    progress("scoring", 1.0)

    progress("list rules", 0.0)
    ids = pd.DataFrame({"person_id": features["person_id"], "probability": probability})
    reviewed = review_status(ids, reviews, month, review_rules)
    people = build_list(features, probability, band, rules, previous, listed_before, reviewed)
    progress("list rules", 1.0)
    progress("segments", 0.0)
    segmented = segment_people(people, features, month.index_date, segment_rules, previous)
    people = pd.concat([people, segmented], axis=1)
    progress("segments", 1.0)
    listed = people.index[people["listed"]]
    progress("explaining listed people", 0.0)
    people["reasons"] = pd.Series(pd.NA, index=people.index, dtype="string")
    people["reasons_json"] = pd.Series(pd.NA, index=people.index, dtype="string")
    reference_probability, reference_text = run_reference(people, month)
    if len(listed):
        from models.explain import explain, population_reference, reference_sample

        scored_rows = np.flatnonzero(people["probability"].notna().to_numpy())
        background = scored_rows[reference_sample(len(scored_rows))]
        ref = population_reference(
            model, _rows_at(features, inputs, background),
            mean_probability=reference_probability, description=reference_text,
            population=len(scored_rows),
        )  # fmt: skip
        explanations = explain(
            model, _rows_at(features, inputs, listed.to_numpy()),
            top_n=rules.top_reasons, features=feature_defs, reference=ref,
        )  # fmt: skip
        texts, payloads = _reason_columns(explanations, rules.top_reasons)
        people.loc[listed, "reasons"] = texts
        people.loc[listed, "reasons_json"] = payloads
    progress("explaining listed people", 1.0)

    progress("drift", 0.0)
    scored_mask = people["probability"].notna().to_numpy()
    drift, drift_note = _drift(
        model, features, scored_mask, people.loc[scored_mask, "probability"].to_numpy(),
        training_sample, rules,
    )  # fmt: skip
    if drift is None and training_note:
        drift_note = training_note
    progress("drift", 1.0)

    warnings = []
    known = set(people["neighbourhood"].dropna()) | set(ineligible["neighbourhood"].dropna())
    unknown = sorted(set(rules.capacity_by_neighbourhood) - known)
    if unknown:
        warnings.append(
            "capacity overrides name neighbourhoods not in the extract: " + ", ".join(unknown)
        )
    if drift is not None:
        warnings += [
            f"drift: PSI of {r.name} is {r.psi:.3f}, above {rules.drift_warning_psi:g}"
            for r in drift[drift["warning"]].itertuples()
        ]
    elif drift_note:
        warnings.append(f"drift not measured: {drift_note}")

    progress("summary", 0.0)
    cap = None
    if rules.mode == "capacity":
        hoods = pd.Series(sorted(known), index=sorted(known), dtype="string")
        cap = capacities(hoods, rules)
    counts = neighbourhood_counts(people, ineligible, cap)
    exclusions = exclusion_counts(features, rules, reviewed)
    distribution = score_distribution(people, [name for name, _ in model.bands])
    on_list = people.loc[people["listed"], "probability"]
    meta = {
        "run_id": run_id,
        "month": month,
        "index_date": month.index_date.isoformat(),
        "created": created.isoformat(),
        "model": {"name": model_info.name, "version": model_info.version},
        "bands": [[name, float(low)] for name, low in model.bands],
        "extract": extract,
        "history": history,
        "rule": rule_text(rules),
        # What every explanation of this run starts from (models.explain): the mean served
        # probability of everyone scored, and who they are in words.
        "reference_probability": reference_probability,
        "reference": reference_text,
        "list_settings": rules.model_dump(),
        "review_settings": review_rules.model_dump(),
        "counts": {
            "in_extract": int(len(people) + len(ineligible)),
            "not_eligible": len(ineligible),
            "eligible": len(people),
            "scored": int(scored_mask.sum()),
            "excluded": int(people["excluded"].notna().sum()),
            "candidates": int(people["rank"].notna().sum()),
            "listed": int(people["listed"].sum()),
            "new_this_month": int(people["new_this_month"].sum()),
            "on_last_month_list": int((people["listed"] & people["on_last_month_list"]).sum()),
            "risk_risen": int((people["listed"] & people["risk_risen"]).sum()),
            "risk_risen_since_review": int(people["risk_risen_since_review"].sum()),
            "review_due": int(people["review_due"].sum()),
            "expected_ppv": float(on_list.mean()) if len(on_list) else None,
        },
        "not_eligible": {k: int(v) for k, v in ineligible["reason"].value_counts().items()},
        "exclusions": {
            str(k): {"first": int(v["first"]), "any": int(v["any"])}
            for k, v in exclusions.groupby("reason", sort=False)[["first", "any"]].sum().iterrows()
        },
        "neighbourhoods": json.loads(counts.to_json(orient="index")),
        "score_distribution": distribution,
        "drift": None if drift is None else drift.to_dict(orient="records"),
        "drift_note": drift_note,
        "warnings": warnings,
        "segments": segments_meta(people, segment_rules),
    }
    summary = render_summary(
        meta,
        counts,
        ineligible,
        exclusions,
        distribution,
        drift,
        drift_note,
        rules.drift_warning_psi,
    )
    progress("summary", 1.0)
    return ScoringRun(
        run_id=run_id,
        month=month,
        meta=meta,
        people=people,
        features=(
            model_inputs(features, model, values, people["probability"])
            if inputs is None
            else inputs.withheld(people["probability"])
        ),
        summary=summary,
    )


def _rows_at(
    features: pd.DataFrame, inputs: SpooledInputs | None, positions: np.ndarray
) -> pd.DataFrame:
    """The rows of `features` at `positions` with their model inputs: read back from the spool
    when the run has one."""
    return features.iloc[positions] if inputs is None else inputs.rows_at(positions)


def _eligible_features(extract: Any, day: date, progress: ProgressFn) -> pd.DataFrame:
    """The features stage's table for the eligible population at `day`."""
    import features as feature_stage

    return feature_stage.build_features(extract, day, progress=progress)


def _scored_features(
    extract: Any, day: date, model: RiskModel, keep: list[str], spool: Path, progress: ProgressFn
) -> tuple[pd.DataFrame, np.ndarray | None, SpooledInputs | None]:
    """The eligible population's features at `day`: on DuckDB the whole table (`make_run`
    scores it); on Spark scored on the executors and streamed to the driver a partition at a
    time, keeping only the columns `keep` and the probability, the model inputs spooled to a
    Parquet file in the folder `spool` (`scoring.inputs`)."""
    if extract.engine != "spark":
        return _eligible_features(extract, day, progress), None, None
    import features as feature_stage
    from models.spark_scoring import score_on_executors
    from records.spark import arrow_batches

    progress("features", 0.0)
    df = feature_stage.build_features_df(extract, day)
    keep = [c for c in df.columns if c in set(keep)]
    columns = [c for c in df.columns if c in set(keep) | set(model.feature_names)]
    scored = score_on_executors(model, df, keep=columns).orderBy("person_id")
    kept: list[pd.DataFrame] = []
    probability: list[np.ndarray] = []

    def frames() -> Iterator[pd.DataFrame]:
        for batch in arrow_batches(scored):
            frame = batch.to_pandas()
            kept.append(frame[keep].copy())  # its own memory: the batch's frame is let go
            probability.append(frame["probability"].to_numpy(float))
            yield frame

    inputs = spool_inputs(frames(), model, spool / "model-inputs.parquet")
    progress("features", 1.0)
    table = pd.concat(kept, ignore_index=True) if kept else scored.select(keep).toPandas()
    table = feature_stage.feature_table(table, some_columns=True)
    return table, np.concatenate(probability) if probability else np.empty(0), inputs


def add_inputs(store: ScoreStore, run_id: str, inputs: pd.DataFrame, model: RiskModel) -> None:
    """Store rebuilt model inputs with a run that has none, once they reproduce its stored
    scores (same people, same probabilities); StoreError naming the run otherwise."""
    people = store.people(run_id, columns=["person_id", "probability"])
    if len(inputs) != len(people) or set(inputs["person_id"]) != set(people["person_id"]):
        raise StoreError(
            f"the extract's eligible people ({len(inputs):,}) are not the {len(people):,} people "
            f"of stored run {run_id!r}: its model inputs cannot be rebuilt from this extract"
        )
    order = pd.Index(inputs["person_id"].astype(str)).get_indexer(people["person_id"].astype(str))
    inputs = inputs.iloc[order].reset_index(drop=True)
    scored = people["probability"].notna().to_numpy()
    again = model.predict_proba(inputs.loc[scored]) if scored.any() else np.empty(0)
    stored = people.loc[scored, "probability"].to_numpy(float)
    if not np.allclose(again, stored, rtol=1e-9, atol=1e-12):
        raise StoreError(
            f"model inputs rebuilt for stored run {run_id!r} do not reproduce its scores (the "
            "features code has changed since it was scored); remove the run folder "
            f"{store.runs_dir / run_id} and score the month again"
        )
    store.add_features(run_id, withhold_unscored(inputs, people["probability"]))


@contextmanager
def _opened(
    extract_dir: Path, settings: Settings, progress: ProgressFn, loaded: Extract | None
) -> Iterator[Extract]:
    """The extract at `extract_dir`: `loaded` as given (left open), else opened and closed."""
    if loaded is not None:
        if Path(loaded.path).resolve() != extract_dir.resolve():
            raise ValueError(f"the loaded extract is {loaded.path}, not {extract_dir}")
        yield loaded
        return
    from records import open_extract

    extract = open_extract(extract_dir, settings, progress)
    try:
        yield extract
    finally:
        extract.close()


def score_month(
    extract_dir: Path,
    month: str,
    settings: Settings,
    *,
    model_ref: str = "champion",
    progress: ProgressFn | None = None,
    extract: Extract | None = None,
) -> RunResult:
    """Score `month` from the extract in `extract_dir` with the registry's `model_ref` model and
    store the run (reusing a stored run with the same inputs). `extract`: the extract at
    `extract_dir` already loaded (e.g. in a notebook's Spark session), used and left open; by
    default it is opened on `[engine]` and closed here. Raises with a clear message when there
    is no such model or the month's index date is outside the extract."""
    from config.db.reviews import read_reviews
    from features.cohort import ineligible_people
    from features.dates import check_extract_index_date, check_index_date
    from records import read_manifest

    progress = progress or no_progress
    month = Month(month)
    extract_dir = Path(extract_dir)
    manifest = read_manifest(extract_dir)
    check_index_date(manifest, month.index_date)  # before the model loads: the manifest's rules
    from models.registry import load_risk_model, training_sample  # imports MLflow

    progress("loading model", 0.0)
    model, version = load_risk_model(settings, ref=model_ref)
    progress("loading model", 1.0)
    model_info = ModelInfo(settings.mlflow.registered_model, str(version))
    rules = settings.lists
    store = ScoreStore(settings.score_store)

    progress("fingerprinting extract", 0.0)
    fingerprint = extract_fingerprint(extract_dir)
    progress("fingerprinting extract", 1.0)
    history = store.history(month)
    reviews = read_reviews(settings)
    run_id = run_id_for(
        month, model_info, fingerprint, rules, settings.segments, history,
        reviews_fingerprint(reviews, month, settings.reviews),
    )  # fmt: skip
    if store.has_run(run_id):
        if not store.has_features(run_id):  # stored before runs kept their model inputs
            with _opened(extract_dir, settings, progress, extract) as loaded:
                features = _eligible_features(loaded, month.index_date, progress)
            progress("storing model inputs", 0.0)
            add_inputs(store, run_id, model_inputs(features, model), model)
            progress("storing model inputs", 1.0)
        store.set_current(month, run_id)
        return RunResult(
            run_id, month, store.runs_dir / run_id, True, store.meta(run_id),
            later_months(store, month),
        )  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="casefinder-spool-") as spool:
        with _opened(extract_dir, settings, progress, extract) as loaded:
            day = check_extract_index_date(loaded, month.index_date)
            keep = rule_columns(model, rules, settings.segments)
            features, probability, inputs = _scored_features(
                loaded, day, model, keep, Path(spool), progress
            )
            progress("not eligible", 0.0)
            ineligible = ineligible_people(loaded, day)
            [(in_extract,)] = loaded.rows("SELECT count(*) FROM people")
        if len(features) + len(ineligible) != in_extract:
            raise RuntimeError(  # one eligibility rule gives both sets, so this is a bug
                f"{len(features):,} eligible and {len(ineligible):,} not eligible people are "
                f"not the {in_extract:,} people of the extract"
            )
        progress("not eligible", 1.0)
        try:
            sample = training_sample(settings, version)
        except Exception as exc:  # drift is reported as not measured, the run goes on
            sample, note = None, f"{type(exc).__name__}: {exc}"
        else:
            note = None

        run = make_run(
            month=month,
            features=features,
            ineligible=ineligible,
            model=model,
            model_info=model_info,
            extract={
                "path": str(extract_dir.resolve()),
                "fingerprint": fingerprint,
                "extract_date": manifest.extract_date.isoformat(),
                "complete_to": {k: v.isoformat() for k, v in manifest.complete_to.items()},
            },
            rules=rules,
            previous=store.previous_list(month),
            listed_before=store.listed_before(month),
            training_sample=sample,
            training_note=note,
            progress=progress,
            segment_rules=settings.segments,
            history=history,
            reviews=reviews,
            review_rules=settings.reviews,
            probability=probability,
            inputs=inputs,
        )
        progress("storing run", 0.0)
        path = store.write(run)
        progress("storing run", 1.0)
    return RunResult(
        run.run_id, month, path, False, store.meta(run.run_id), later_months(store, month)
    )
