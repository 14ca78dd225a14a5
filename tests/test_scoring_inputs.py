"""Model inputs spooled to disk (how a Spark run keeps the month's feature table off the
driver): read back by position and a batch at a time, stored as a frame would be, checked
against the run's people, and a run made from them is the run made from the whole table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scoring_support import MODEL_INPUTS, feature_frame, run_for, train_model

import scoring.inputs
from config.settings import ListSettings, SegmentSettings
from models.risk_model import RiskModel
from scoring.inputs import SpooledInputs, model_inputs, spool_inputs
from scoring.run import rule_columns
from scoring.store import ScoreStore, StoreError


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return train_model()


def _chunks(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    return [frame.iloc[i : i + size] for i in range(0, len(frame), size)]


def test_spooled_inputs_read_back_by_position_and_in_batches(
    model: RiskModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring.inputs, "SPOOL_BATCH_ROWS", 64)  # rows cross batch edges
    features = feature_frame(500)
    spool = spool_inputs(_chunks(features, 130), model, tmp_path / "spool.parquet")
    expected = model_inputs(features, model)
    assert spool.rows == 500
    batches = list(spool.batches())
    assert len(batches) == 8 and max(len(b) for b in batches) == 64
    pd.testing.assert_frame_equal(pd.concat(batches, ignore_index=True), expected)

    positions = [499, 0, 64, 63, 250, 64, 127, 128]  # any order, repeats, both sides of edges
    pd.testing.assert_frame_equal(
        spool.rows_at(positions), expected.iloc[positions].reset_index(drop=True)
    )
    assert spool.rows_at([]).columns.tolist() == ["person_id", *MODEL_INPUTS]
    with pytest.raises(IndexError, match="outside the 500 spooled rows"):
        spool.rows_at([3, 500])

    probability = np.linspace(0, 1, 500)
    probability[[5, 64, 499]] = np.nan
    blank = pd.concat(spool.withheld(probability).batches(), ignore_index=True)
    assert blank.loc[[5, 64, 499], MODEL_INPUTS].isna().all().all()
    assert blank["person_id"].tolist() == expected["person_id"].tolist()
    assert not blank.drop(index=[5, 64, 499])[MODEL_INPUTS].isna().any().any()
    with pytest.raises(ValueError, match="499 probabilities for 500 spooled rows"):
        spool.withheld(probability[:-1])


def test_an_empty_spool_still_has_the_model_inputs_columns(
    model: RiskModel, tmp_path: Path
) -> None:
    spool = spool_inputs([], model, tmp_path / "spool.parquet")
    [batch] = list(spool.batches())
    assert spool.rows == 0 and batch.columns.tolist() == ["person_id", *MODEL_INPUTS]


def test_a_run_from_spooled_inputs_is_the_run_from_the_whole_table(
    model: RiskModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a Spark run hands `make_run` (the rule columns, the executors' probabilities and
    the spool) gives the people, reasons, summary and stored inputs of the whole table: more
    people than the reference's background sample, opted-out people, drift measured."""
    monkeypatch.setattr(scoring.inputs, "SPOOL_BATCH_ROWS", 300)
    features = feature_frame(2500, seed=5)
    features.loc[features.index[:9], "data_opt_out"] = 1
    rules = ListSettings(capacity=20, drift_features=["age"])
    training = feature_frame(800, seed=9)
    probability = model.predict_proba(features)
    whole = run_for(model, features, rules=rules, training=training, probability=probability)

    keep = [c for c in rule_columns(model, rules, SegmentSettings()) if c in features.columns]
    assert set(keep) & set(MODEL_INPUTS) == {"age"}  # the drift's: the reasons read the spool
    spool = spool_inputs(_chunks(features, 700), model, tmp_path / "spool.parquet")
    narrow = features[keep].copy()
    spooled = run_for(model, narrow, rules=rules, training=training, probability=probability,
                      inputs=spool)  # fmt: skip

    assert spooled.run_id == whole.run_id and spooled.meta == whole.meta
    pd.testing.assert_frame_equal(spooled.people, whole.people)
    assert whole.people["listed"].sum() == 60 and whole.meta["drift"] is not None
    assert isinstance(spooled.features, SpooledInputs)
    a, b = ScoreStore(tmp_path / "whole"), ScoreStore(tmp_path / "spooled")
    a.write(whole)
    b.write(spooled)
    pd.testing.assert_frame_equal(b.features(whole.run_id), a.features(whole.run_id))
    assert b.features(whole.run_id).loc[:8, MODEL_INPUTS].isna().all().all()
    with pytest.raises(ValueError, match="spooled model inputs need their precomputed"):
        run_for(model, narrow, rules=rules, inputs=spool)
    with pytest.raises(ValueError, match="2,500 spooled input rows for 2,499 people"):
        run_for(model, narrow.iloc[1:], rules=rules, probability=probability[1:], inputs=spool)


def test_spooled_inputs_out_of_the_runs_order_are_refused_and_nothing_stored(
    model: RiskModel, tmp_path: Path
) -> None:
    features = feature_frame(400)
    probability = model.predict_proba(features)
    run = run_for(model, features, probability=probability)
    shuffled = features.sample(frac=1.0, random_state=3)
    spool = spool_inputs([shuffled], model, tmp_path / "spool.parquet")
    store = ScoreStore(tmp_path / "scores")
    run.features = spool
    with pytest.raises(StoreError, match="do not match its people: more rows than its 400"):
        store.write(run)
    short = spool_inputs([features.iloc[:399]], model, tmp_path / "short.parquet")
    run.features = short
    with pytest.raises(StoreError, match="399 input rows for 400 people"):
        store.write(run)
    assert not store.has_run(run.run_id) and store.current_run_id("2026-11") is None
