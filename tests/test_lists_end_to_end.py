"""End to end through a real trained model: synthetic extract -> features -> training (MLflow
SQLite registry) -> `casefinder score` for two months -> `casefinder lists`. Reuses the training
tests' one training run per process and scores with its version number, so the shared
registry's champion is left alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from test_training_support import REAL_PEOPLE, real_extract, real_run
from typer.testing import CliRunner

from casefinder.cli import app
from scoring.exports import FILE_COLUMNS
from scoring.store import ScoreStore

runner = CliRunner()
pytestmark = pytest.mark.slow


# Issue 12's rule: "all other factors" at most 15% of the distance from the reference to the
# score for at least 90% of listed people (measured figures: docs/explanations.md).
OTHER_SHARE, OTHER_SHARE_PEOPLE = 0.15, 0.90


def _check_listed_explanations(
    store: ScoreStore, run_id: str, meta: dict, people: pd.DataFrame, version: str
) -> None:
    """The run's reference is its mean served probability; its list reasons carry values and are
    the ones a person's explanation gives; the 15% rule holds for its listed people."""
    import json

    import numpy as np

    from config.settings import load_settings
    from models.explain import explain, population_reference
    from models.registry import load_risk_model

    scored = people["probability"].notna()
    assert meta["reference_probability"] == pytest.approx(people.loc[scored, "probability"].mean())
    assert meta["reference"] == "people aged 65+ scored for 2026-11"
    model, _ = load_risk_model(load_settings(), ref=version)
    inputs = store.features(run_id)
    ref = population_reference(
        model, inputs[scored.to_numpy()], mean_probability=meta["reference_probability"]
    )
    listed = people[people["listed"]]
    rows = inputs.set_index("person_id").loc[listed["person_id"]].reset_index()
    explained = explain(model, rows, reference=ref)
    shares = []
    for e, (_, row) in zip(explained, listed.iterrows(), strict=True):
        stored = json.loads(row["reasons_json"])
        assert [r["sentence"] for r in stored] == [r.sentence for r in e.raising]
        assert [r["value"] for r in stored] == [r.value for r in e.raising]
        assert any(r["value"] is not None for r in stored)
        parts = sum(r.probability_change for r in e.raising + e.lowering)
        total = e.reference_probability + parts + e.other_probability_change
        assert total == pytest.approx(row["probability"], abs=1e-12)
        shares.append(abs(e.other_probability_change) / abs(e.probability - ref.probability))
    assert np.mean(np.array(shares) <= OTHER_SHARE) >= OTHER_SHARE_PEOPLE, np.quantile(shares, 0.9)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.getbasetemp() / "training-real"
    root.mkdir(exist_ok=True)
    run = real_run(root)
    return {
        "extract": real_extract(root),
        "tracking_uri": run["settings"].tracking_uri,
        "version": run["result"].version,
    }


def test_two_months_scored_listed_and_exported(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["tracking_uri"])
    monkeypatch.setenv("CASEFINDER_LISTS__CAPACITY", "10")
    extract, version = str(trained["extract"]), trained["version"]

    for month in ("2026-10", "2026-11"):
        result = runner.invoke(app, ["score", extract, "--month", month, "--model", version])
        assert result.exit_code == 0, result.output
        assert "stored" in result.output

    store = ScoreStore(home / "scores")
    october = store.people(store.current_run_id("2026-10"))
    november_id = store.current_run_id("2026-11")
    november = store.people(november_id)
    meta = store.meta(november_id)
    assert meta["model"]["version"] == version and meta["current"]
    counts = meta["counts"]
    assert counts["in_extract"] == REAL_PEOPLE
    assert (
        counts["eligible"]
        == len(november)
        == counts["scored"] + meta["exclusions"]["opted_out"]["first"]
    )
    hoods = november["neighbourhood"].nunique()
    assert counts["listed"] == 10 * hoods
    # Everyone listed is a candidate, ranked within their neighbourhood, and explained.
    on_list = november[november["listed"]]
    assert on_list["excluded"].isna().all() and on_list["rank"].le(10).all()
    assert on_list["reasons"].str.len().gt(0).all()
    # Flags agree with October's stored list.
    was_listed = set(october.loc[october["listed"], "person_id"])
    assert set(on_list.loc[on_list["on_last_month_list"], "person_id"]) == (
        set(on_list["person_id"]) & was_listed
    )
    assert set(on_list.loc[on_list["new_this_month"], "person_id"]) == (
        set(on_list["person_id"]) - was_listed
    )
    assert "## Drift against the training data" in store.summary(november_id)
    assert meta["drift"], "drift measured against the model's training sample"
    _check_listed_explanations(store, november_id, meta, november, version)

    # Rerunning the month reuses the stored run.
    result = runner.invoke(app, ["score", extract, "--month", "2026-11", "--model", version])
    assert result.exit_code == 0 and "reused the stored run" in result.output
    assert [r["run_id"] for r in store.runs("2026-11")] == [november_id]

    out = tmp_path / "lists.xlsx"
    result = runner.invoke(
        app, ["lists", "--month", "2026-11", "--format", "xlsx", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    book = load_workbook(out)
    assert book.sheetnames[0] == "About" and len(book.sheetnames) == hoods + 1
    sheets = pd.read_excel(out, sheet_name=None, dtype={"Person ID": str})
    del sheets["About"]
    assert all(list(s.columns) == FILE_COLUMNS and len(s) == 10 for s in sheets.values())


def test_months_scored_out_of_order_keep_true_flags(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site scores November, then backfills October: November's lists follow October's run at
    once, and scoring November again makes a new run (not "reused") with counts to match."""
    home = tmp_path / "home"
    monkeypatch.delenv("CASEFINDER_CONFIG", raising=False)
    monkeypatch.setenv("CASEFINDER_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["tracking_uri"])
    monkeypatch.setenv("CASEFINDER_LISTS__CAPACITY", "10")
    extract, version = str(trained["extract"]), trained["version"]
    score = ["score", extract, "--model", version, "--month"]
    assert runner.invoke(app, [*score, "2026-11"]).exit_code == 0
    result = runner.invoke(app, [*score, "2026-10"])
    assert result.exit_code == 0, result.output
    assert "Later months scored before 2026-10 (2026-11)" in result.output

    store = ScoreStore(home / "scores")
    first = store.current_run_id("2026-11")
    was = set(store.people(store.current_run_id("2026-10")).query("listed")["person_id"])
    out = tmp_path / "nov.csv"
    assert runner.invoke(app, ["lists", "--month", "2026-11", "--out", str(out)]).exit_code == 0
    table = pd.read_csv(out, dtype={"Person ID": str}, keep_default_na=False)
    on_both = table["Person ID"].isin(was)
    assert on_both.any()
    assert not table.loc[on_both, "Flags"].str.contains("new this month").any()
    assert table.loc[on_both, "Flags"].str.contains("on last month's list").all()
    assert "out of date" in store.summary(first)

    result = runner.invoke(app, [*score, "2026-11"])
    assert result.exit_code == 0 and "reused" not in result.output, result.output
    again = store.current_run_id("2026-11")
    assert again != first and "out of date" not in store.summary(again)
    meta = store.meta(again)
    assert meta["counts"]["on_last_month_list"] == int(on_both.sum())
    assert meta["counts"]["new_this_month"] == int((~on_both).sum())
