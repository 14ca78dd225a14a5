"""Population segments in a scoring run: stored with the run, every scored person in exactly one
segment with counts adding up to the run's population, movement from last month's run, and the
`casefinder segments` export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from test_scoring_support import feature_frame, run_for, train_model
from typer.testing import CliRunner

from casefinder.cli import app
from features.segments import SEGMENTS
from scoring.segments import EXPORT_COLUMNS, flow_sentence
from scoring.store import ScoreStore

runner = CliRunner()


def _features(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """The test population with some people in each segment and some opted out."""
    frame = feature_frame(n, seed)
    rng = np.random.default_rng(seed + 10)
    frame.loc[rng.uniform(size=n) < 0.05, "days_in_hospital"] = 3
    frame.loc[rng.uniform(size=n) < 0.05, "in_care_home"] = 1
    frame.loc[rng.uniform(size=n) < 0.10, "home_care_hours_per_week"] = 10.0
    frame.loc[rng.uniform(size=n) < 0.10, "efi_band"] = 2
    frame.loc[rng.uniform(size=n) < 0.05, "data_opt_out"] = 1
    return frame


def test_every_scored_person_is_in_exactly_one_segment_and_counts_add_up() -> None:
    run = run_for(train_model(), _features())
    people = run.people
    scored = people["probability"].notna()
    assert people.loc[scored, "segment"].isin(list(SEGMENTS)).all()
    assert people.loc[~scored, "segment"].isna().all()  # opted out: no score, no segment
    assert people.loc[scored, "segment_reason"].notna().all()
    meta = run.meta["segments"]
    total = sum(row["people"] for row in meta["counts"])
    assert total == meta["segmented"] == run.meta["counts"]["scored"] == int(scored.sum())
    by_hood = pd.DataFrame(meta["counts"]).groupby("neighbourhood")["people"].sum()
    expected = people[scored].groupby("neighbourhood").size()
    assert by_hood.to_dict() == expected.to_dict()
    assert {row["segment"] for row in meta["counts"] if row["people"]} == set(SEGMENTS)
    assert sum(row["people"] for row in meta["flows"]) == total


def test_movement_from_last_months_run() -> None:
    model = train_model()
    before = _features()
    after = before.copy()
    after["home_care_hours_per_week"] = np.nan  # everyone's home care stopped
    first = run_for(model, before, month="2026-10")
    second = run_for(model, after, month="2026-11", previous=first.people)
    people = second.people
    last = people["person_id"].map(first.people.set_index("person_id")["segment"])
    now = people["segment"]
    moved = [bool(pd.notna(a) and pd.notna(b) and a != b) for a, b in zip(last, now, strict=True)]
    assert people["moved_segment"].tolist() == moved
    assert people["moved_segment"].any()
    flows = pd.DataFrame(second.meta["segments"]["flows"])
    changed = flows[flows["from_segment"] != flows["to_segment"]]
    assert changed["people"].sum() == people["moved_segment"].sum()
    assert set(changed["from_segment"]) <= {"high_risk_independent"}
    assert flow_sentence("fit_and_well", "high_risk_independent", 31) == (
        "31 people moved from fit and well to high risk and independent"
    )


@pytest.fixture
def home(cli_home: Path) -> Path:
    ScoreStore(cli_home / "scores").write(run_for(train_model(), _features(240)))
    return cli_home


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_segments_command_writes_one_row_per_segmented_person(
    home: Path, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"segments{suffix}"
    result = runner.invoke(app, ["segments", "--month", "2026-11", "--out", str(out)])
    assert result.exit_code == 0, result.output
    if suffix == ".csv":
        table = pd.read_csv(out)
    elif suffix == ".parquet":
        table = pd.read_parquet(out)
    else:
        sheet = load_workbook(out)["segments"]
        assert sheet.freeze_panes == "A2"
        rows = list(sheet.values)
        table = pd.DataFrame(rows[1:], columns=rows[0])
    people = ScoreStore(home / "scores").people(
        ScoreStore(home / "scores").resolve(month="2026-11")
    )
    assert list(table.columns[: len(EXPORT_COLUMNS)]) == EXPORT_COLUMNS
    assert len(table) == people["segment"].notna().sum()
    assert table["person_id"].is_unique and set(table["segment"]) <= set(SEGMENTS)


def test_segments_command_refuses_other_files_and_unscored_months(home: Path, tmp_path) -> None:
    bad = runner.invoke(app, ["segments", "--month", "2026-11", "--out", str(tmp_path / "x.txt")])
    assert bad.exit_code == 2 and ".csv" in bad.output
    none = runner.invoke(app, ["segments", "--month", "2026-05", "--out", str(tmp_path / "x.csv")])
    assert none.exit_code == 2 and "not been scored" in none.output


def test_training_reports_the_model_by_segment_without_flagging_it() -> None:
    from config.settings import SegmentSettings, TrainingSettings
    from training.fairness import fairness_table

    rows = _features(800, seed=3)
    rows["sex"], rows["imd_decile"], rows["ethnicity_group"] = "2", 5, 1
    rng = np.random.default_rng(4)
    p = rng.uniform(0.01, 0.6, len(rows))
    y = (rng.uniform(size=len(rows)) < p).astype(int)
    flags = p >= np.quantile(p, 0.9)
    table = fairness_table(rows, y, p, flags, TrainingSettings(), segments=SegmentSettings())
    by_segment = table[table["attribute"] == "segment"]
    assert set(by_segment["group"]) == set(SEGMENTS.values())
    assert by_segment["rows"].sum() == len(rows)
    assert {"auroc", "ppv_list", "calibration_slope", "oe_ratio"} <= set(table.columns)
    assert (by_segment["flag"] == "").all()
    without = fairness_table(rows.drop(columns="efi_band"), y, p, flags, TrainingSettings(),
                             segments=SegmentSettings())  # fmt: skip
    assert "segment" not in set(without["attribute"])
