"""Scoring on Spark executors gives exactly DuckDB's scores: `casefinder predict --engine spark`
(same people, order, bands; probabilities equal to 1e-12 relative) on a hand-built extract, the
same scoring on a generated one, LightGBM's contributions computed on the executors, and a
`score` run on Spark stored as DuckDB's run is (same people, probabilities, list and reasons).

One small real champion (LightGBM + Platt calibrator in a SQLite MLflow registry, trained on
DuckDB features) scores every extract. A Spark load of an extract costs about a minute of query
planning on one core, so only the `predict` command loads one; the other tests read DuckDB's
loaded tables as Spark views (the loader's parity is tests/test_spark.py's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from test_spark import TEST_JVM, _on_spark
from test_training_support import isolated_settings
from typer.testing import CliRunner

from casefinder.cli import app
from tests.serving_fixtures import train_champion, write_small_extract

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]
DAY_AFTER_EXTRACT = "2026-11-01"  # both extracts end on 2026-10-31
RTOL = 1e-12


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from models.registry import load_risk_model

    root = tmp_path_factory.mktemp("spark-scoring")
    extract = write_small_extract(root / "extract")
    settings = isolated_settings(root / "home")
    version = train_champion(extract, settings)
    model, _ = load_risk_model(settings, version)
    return {"extract": extract, "settings": settings, "version": version, "model": model}


def assert_same_scores(duck: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Same columns, people in the same order, bands and versions; probabilities to 1e-12."""
    assert list(duck.columns) == list(spark.columns)
    assert len(duck) > 0
    for column in ("person_id", "index_date", "band", "model_version"):
        assert duck[column].tolist() == spark[column].tolist(), column
    np.testing.assert_allclose(spark["probability"], duck["probability"], rtol=RTOL, atol=0)


def test_predict_command_on_spark_writes_duckdbs_scores(
    spark: Any, champion: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Spark the scores are written by Spark itself (a folder of part files), no person's
    score through the driver, and read back they are DuckDB's file."""
    from test_spark_outputs import driver_collects, person_level

    settings = champion["settings"]
    monkeypatch.setenv("CASEFINDER_HOME", str(settings.home))
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.delenv("CASEFINDER_ENGINE__NAME", raising=False)
    outs = {}
    collected = []
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"{engine}.parquet"
        with driver_collects() as seen:
            result = CliRunner().invoke(
                app,
                ["predict", str(champion["extract"]), "--index-date", DAY_AFTER_EXTRACT,
                 "--out", str(outs[engine]), "--engine", engine],
            )  # fmt: skip
        collected += seen
        assert result.exit_code == 0, result.output
    monkeypatch.delenv("CASEFINDER_ENGINE__NAME", raising=False)
    assert outs["duckdb"].is_file() and outs["spark"].is_dir()
    duck, ours = pd.read_parquet(outs["duckdb"]), pd.read_parquet(outs["spark"])
    assert_same_scores(duck, ours)
    assert duck.dtypes.equals(ours.dtypes)
    assert duck["person_id"].is_monotonic_increasing
    assert duck["band"].nunique() > 1  # the model separates people: bands are a real check
    assert f"Scored {len(duck):,} people" in " ".join(result.output.split())
    assert collected, "the probe recorded nothing: the loader's counts should show"
    assert person_level(collected, len(duck)) == []


def test_predict_on_spark_gives_duckdbs_scores_on_a_generated_extract(
    spark: Any, champion: dict[str, Any], tmp_path: Path
) -> None:
    # Spark reads DuckDB's loaded tables (the loader's parity is tests/test_spark.py's); the
    # features are built, scored on the executors and collected as `predict --engine spark` does.
    from records import load_extract
    from synthetic import SynthConfig, generate
    from training.predict import score_extract

    folder = tmp_path / "generated"
    generate(SynthConfig(people=300, seed=23), folder)
    duck = load_extract(folder)
    ours = _on_spark(duck, spark)
    model, version = champion["model"], champion["version"]
    try:
        day = date.fromisoformat(DAY_AFTER_EXTRACT)
        expected = score_extract(duck, day, model, version)
        actual = score_extract(ours, day, model, version)
    finally:
        ours.close()
        duck.close()
    assert len(expected) > 150
    assert_same_scores(expected, actual)


def test_contributions_on_executors_add_up_and_match_the_driver(
    spark: Any, champion: dict[str, Any]
) -> None:
    import features
    from models.explain import contributions
    from models.spark_scoring import BASE_COLUMN, CONTRIBUTION_PREFIX, score_on_executors
    from records import load_extract

    model = champion["model"]
    extract = load_extract(champion["extract"])
    try:
        rows = features.build_features(extract, date(2026, 10, 1)).head(60)
    finally:
        extract.close()
    df = spark.createDataFrame(rows).repartition(3)  # several partitions, several models built
    scored = score_on_executors(model, df, keep=["person_id"], contributions=True)
    out = scored.toPandas().set_index("person_id").loc[rows["person_id"]]
    base, values = contributions(model, rows)
    names = [f"{CONTRIBUTION_PREFIX}{n}" for n in model.feature_names]
    np.testing.assert_allclose(out[names].to_numpy(), values, rtol=1e-12, atol=1e-15)
    assert (out[BASE_COLUMN] == base).all()
    margin, probability = model.scores(rows)
    np.testing.assert_allclose(out["margin"], margin, rtol=RTOL, atol=0)
    np.testing.assert_allclose(out[names].sum(axis=1) + base, margin, rtol=1e-9)
    np.testing.assert_allclose(out["probability"], probability, rtol=RTOL, atol=0)
    assert out["band"].tolist() == model.band(probability).tolist()

    with pytest.raises(ValueError, match="missing feature columns: age"):
        score_on_executors(model, df.drop("age"))


def test_score_month_on_spark_stores_duckdbs_run(
    spark: Any, champion: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Spark run reads DuckDB's loaded tables as Spark views (a Spark load of the extract
    # costs a minute; `predict --engine spark` above goes through it): its features are built,
    # scored on the executors and streamed to the driver a partition at a time as on a Spark
    # load, which keeps only the columns the list rules read and spools the model inputs.
    import scoring.run
    from records import load_extract
    from scoring.inputs import SpooledInputs
    from scoring.run import score_month
    from scoring.store import ScoreStore

    given: dict[str, Any] = {}
    make_run = scoring.run.make_run

    def seen(**kwargs: Any) -> Any:
        given["duckdb" if kwargs["inputs"] is None else "spark"] = kwargs
        return make_run(**kwargs)

    monkeypatch.setattr(scoring.run, "make_run", seen)

    settings, extract = champion["settings"], champion["extract"]
    month = "2026-10"
    duck = score_month(extract, month, settings)
    duck_store = settings.score_store.rename(settings.home / "scores-duckdb")
    loaded = load_extract(extract)
    on_spark = _on_spark(loaded, spark)
    try:
        elsewhere = shutil.copytree(extract, tmp_path / "copy")
        with pytest.raises(ValueError, match="the loaded extract is"):
            score_month(elsewhere, month, settings, extract=on_spark)
        ours = score_month(extract, month, settings, extract=on_spark)
    finally:
        on_spark.close()
        loaded.close()
    assert not ours.reused and ours.run_id == duck.run_id
    held = given["spark"]["features"]
    assert isinstance(given["spark"]["inputs"], SpooledInputs)
    assert set(held.columns) == set(scoring.run.rule_columns(
        champion["model"], settings.lists, settings.segments
    )) and held.shape[1] < given["duckdb"]["features"].shape[1] / 4  # fmt: skip
    columns = ["person_id", "probability", "band", "listed", "rank", "excluded", "reasons",
               "reasons_json", "segment"]  # fmt: skip
    a = ScoreStore(duck_store).people(duck.run_id, columns=columns)
    b = ScoreStore(settings.score_store).people(ours.run_id, columns=columns)
    assert len(a) > 0 and a["listed"].sum() > 0 and a["probability"].isna().sum() == 1
    assert a["person_id"].tolist() == b["person_id"].tolist()
    assert (a["probability"].isna() == b["probability"].isna()).all()
    scored = a["probability"].notna()
    np.testing.assert_allclose(
        b.loc[scored, "probability"], a.loc[scored, "probability"], rtol=RTOL, atol=0
    )
    for column in ("band", "listed", "rank", "excluded", "reasons", "segment"):
        assert a[column].astype(str).tolist() == b[column].astype(str).tolist(), column
    assert a["reasons"].notna().sum() == a["listed"].sum()
    assert duck.meta["counts"] == ours.meta["counts"]
    inputs_a = ScoreStore(duck_store).features(duck.run_id)
    inputs_b = ScoreStore(settings.score_store).features(ours.run_id)
    pd.testing.assert_frame_equal(inputs_a, inputs_b, rtol=RTOL)


def test_arrow_batches_stream_the_rows_in_order_a_batch_at_a_time(spark: Any) -> None:
    """How `score` on Spark brings the month's table to the driver: a partition at a time, in
    the frame's order, with Spark's values and nulls."""
    import pyarrow as pa

    from records.spark import arrow_batches

    df = (
        spark.range(0, 23_000, numPartitions=3)
        .selectExpr(
            "format_string('P%06d', 23000 - id) AS person_id",
            "id / 4 AS value",
            "CAST(IF(id % 7 = 0, NULL, id) AS INT) AS count",
        )
        .orderBy("person_id")
    )
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
    try:
        batches = arrow_batches(df)
        first = next(batches)  # a generator: the first batch before the rest are fetched
        rest = list(batches)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert first.num_rows <= 5000 and len(rest) >= 4
    got = pa.Table.from_batches([first, *rest]).to_pandas()
    expected = df.toPandas()
    assert got["person_id"].is_monotonic_increasing and len(got) == 23_000
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["count"].isna().sum() == len(range(0, 23_000, 7))
    assert list(arrow_batches(df.limit(0))) == []


def test_score_command_over_spark_connect_stores_duckdbs_run(
    champion: dict[str, Any], tmp_path: Path
) -> None:
    """The `score` path a cluster runs (`[engine] remote`: Spark Connect, no broadcast, the
    month's table streamed through Connect's `toLocalIterator`) for real: a local Spark Connect
    server in a fresh process, its extract loaded by Spark, stores DuckDB's run."""
    from scoring.run import score_month
    from scoring.store import ScoreStore

    settings, extract, month = champion["settings"], champion["extract"], "2026-10"
    store = settings.score_store
    if store.exists():  # earlier tests' runs: both runs below start from an empty store
        store.rename(tmp_path / "earlier-scores")
    env = {
        **os.environ,
        "CASEFINDER_HOME": str(settings.home),
        "CASEFINDER_ENGINE__REMOTE": "local[1]",
        "CASEFINDER_ENGINE__CONF": json.dumps(
            {"spark.sql.shuffle.partitions": "1", "spark.driver.extraJavaOptions": TEST_JVM}
        ),
    }
    for name in ("CASEFINDER_ENGINE__NAME", "CASEFINDER_CONFIG", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    command = [sys.executable, "-m", "casefinder.cli", "score", str(extract), "--month", month,
               "--engine", "spark"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    connect = ScoreStore(store.rename(tmp_path / "connect-scores"))
    duck = score_month(extract, month, settings)
    [run_id] = [r["run_id"] for r in connect.runs(month)]
    assert run_id == duck.run_id and connect.meta(run_id)["counts"] == duck.meta["counts"]
    ours, theirs = connect.people(run_id), ScoreStore(store).people(run_id)
    assert ours["listed"].sum() > 0
    for column in ("person_id", "band", "listed", "rank", "excluded", "reasons", "segment"):
        assert ours[column].astype(str).tolist() == theirs[column].astype(str).tolist(), column
    np.testing.assert_allclose(ours["probability"], theirs["probability"], rtol=RTOL)
    pd.testing.assert_frame_equal(
        connect.features(run_id), ScoreStore(store).features(run_id), rtol=RTOL
    )
