"""Scoring runs with a real model, stored: idempotent reruns, new model versions, two months of
flags, the model inputs kept with each run, and a run that fails midway leaving the previous run
intact."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scoring_support import MODEL, MODEL_INPUTS, feature_frame, run_for, train_model

import scoring.store
from config.settings import ListSettings
from models.risk_model import RiskModel
from scoring.run import ModelInfo
from scoring.store import FEATURES_FILE, FeaturesMissing, ScoreStore, StoreError


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return train_model()


@pytest.fixture
def store(tmp_path: Path) -> ScoreStore:
    return ScoreStore(tmp_path / "scores")


def test_run_scores_everyone_and_explains_the_listed(model: RiskModel) -> None:
    features = feature_frame(300)
    run = run_for(model, features, rules=ListSettings(capacity=5))
    people = run.people
    assert len(people) == 300 and people["probability"].between(0, 1).all()
    assert people["listed"].sum() == 15
    on_list = people[people["listed"]]
    assert (
        on_list["reasons"].notna().all() and people.loc[~people["listed"], "reasons"].isna().all()
    )
    # Reasons are the model's top raising factors in the features' own words.
    assert any("emergency admission" in r for r in on_list["reasons"])
    counts = run.meta["counts"]
    assert counts["listed"] == 15 and counts["not_eligible"] == 3 and counts["in_extract"] == 303
    assert counts["expected_ppv"] == pytest.approx(on_list["probability"].mean())
    assert np.allclose(people["probability"], model.predict_proba(features))


def test_same_inputs_give_the_same_run_and_the_store_reuses_it(
    model: RiskModel, store: ScoreStore
) -> None:
    features = feature_frame(300)
    first, second = run_for(model, features), run_for(model, features)
    assert first.run_id == second.run_id
    pd.testing.assert_frame_equal(first.people, second.people)
    path = store.write(first)
    written = (path / "people.parquet").stat().st_mtime_ns
    assert store.write(second) == path
    assert (path / "people.parquet").stat().st_mtime_ns == written
    assert [r["run_id"] for r in store.runs("2026-11")] == [first.run_id]
    stored = store.people(first.run_id)
    pd.testing.assert_frame_equal(stored, first.people, check_dtype=False)


def test_precomputed_probabilities_give_the_run_scored_here(model: RiskModel) -> None:
    # How a Spark run passes the executors' probabilities in: the list, reasons and summary
    # follow them, and a probability per feature row is required.
    features = feature_frame(200)
    here = run_for(model, features, rules=ListSettings(capacity=5))
    given = run_for(model, features, rules=ListSettings(capacity=5),
                    probability=model.predict_proba(features))  # fmt: skip
    pd.testing.assert_frame_equal(here.people, given.people)
    assert here.meta == given.meta
    moved = model.predict_proba(features)[::-1].copy()  # other scores: another list
    other = run_for(model, features, rules=ListSettings(capacity=5), probability=moved)
    assert np.array_equal(other.people["probability"].to_numpy(), moved)
    assert not other.people["listed"].equals(here.people["listed"])
    with pytest.raises(ValueError, match="199 precomputed probabilities for 200 people"):
        run_for(model, features, probability=moved[:-1])


def test_run_stores_the_model_inputs_it_scored(model: RiskModel, store: ScoreStore) -> None:
    features = feature_frame(300).sample(frac=1.0, random_state=4)  # not in person_id order
    features.loc[features.index[:7], "data_opt_out"] = 1
    run = run_for(model, features, rules=ListSettings(capacity=5))
    path = store.write(run)
    assert (path / FEATURES_FILE).is_file()
    inputs = store.features(run.run_id)
    people = store.people(run.run_id)
    assert list(inputs.columns) == ["person_id", *model.feature_names]
    assert all(inputs[name].dtype == np.float64 for name in model.feature_names)
    # Exactly the run's people, in the run's order, with the values the run scored.
    assert inputs["person_id"].tolist() == people["person_id"].tolist()
    assert set(inputs["person_id"]) == set(features["person_id"]) and len(inputs) == 300
    scored = people["probability"].notna().to_numpy()
    assert scored.sum() == 293  # the opted-out keep no score ...
    assert set(people.loc[~scored, "excluded"]) == {"opted_out"}
    assert inputs.loc[~scored, MODEL_INPUTS].isna().all().all()  # ... nor inputs to rebuild it
    expected = features.set_index("person_id").loc[inputs["person_id"], MODEL_INPUTS]
    np.testing.assert_array_equal(
        inputs.loc[scored, MODEL_INPUTS].to_numpy(), expected[scored].to_numpy(float)
    )
    np.testing.assert_allclose(
        model.predict_proba(inputs.loc[scored]), people.loc[scored, "probability"], rtol=1e-12
    )
    assert list(store.features(run.run_id, columns=["person_id"]).columns) == ["person_id"]


def test_with_direct_care_use_opted_out_people_are_scored_and_their_inputs_kept(
    model: RiskModel, store: ScoreStore
) -> None:
    features = feature_frame(100)
    features.loc[features.index[:4], "data_opt_out"] = 1
    run = run_for(model, features, rules=ListSettings(capacity=5, direct_care_use=True))
    store.write(run)
    inputs, people = store.features(run.run_id), store.people(run.run_id)
    assert people["probability"].notna().all()
    assert not inputs[MODEL_INPUTS].isna().all(axis=1).any()


def test_a_run_without_stored_inputs_names_the_run_and_the_rescore(
    model: RiskModel, store: ScoreStore
) -> None:
    run = run_for(model, feature_frame(200))
    path = store.write(run)
    kept = store.features(run.run_id)
    (path / FEATURES_FILE).unlink()  # as a run written before runs kept their inputs
    assert store.has_run(run.run_id) and not store.has_features(run.run_id)
    with pytest.raises(FeaturesMissing) as caught:
        store.features(run.run_id)
    message = str(caught.value)
    assert run.run_id in message and FEATURES_FILE in message
    assert "casefinder score <extract folder> --month 2026-11 --model 1" in message
    with pytest.raises(StoreError, match="no stored run 'nope'"):
        store.features("nope")
    # Inputs must be the run's people in its order; then they are added beside the run.
    with pytest.raises(StoreError, match="do not match its people"):
        store.add_features(run.run_id, kept.iloc[::-1])
    with pytest.raises(StoreError, match="do not match its people"):
        store.add_features(run.run_id, kept.iloc[1:])
    assert not store.has_features(run.run_id)
    store.add_features(run.run_id, kept)
    pd.testing.assert_frame_equal(store.features(run.run_id), kept)
    assert sorted(p.name for p in path.iterdir()) == sorted(
        ["run.json", "people.parquet", FEATURES_FILE, "summary.md"]
    )


def test_inputs_that_do_not_match_the_people_are_refused_before_anything_is_stored(
    model: RiskModel, store: ScoreStore
) -> None:
    run = run_for(model, feature_frame(100))
    run.features = run.features.iloc[:-1]
    with pytest.raises(StoreError, match="99 input rows for 100 people"):
        store.write(run)
    assert not store.has_run(run.run_id) and list(store.staging_dir.iterdir()) == []


def test_new_model_version_is_a_new_run_and_becomes_current(
    model: RiskModel, store: ScoreStore
) -> None:
    features = feature_frame(300)
    old = run_for(model, features)
    new = run_for(model, features, model_info=ModelInfo(MODEL.name, "2"))
    store.write(old)
    store.write(new)
    assert new.run_id != old.run_id
    assert store.current_run_id("2026-11") == new.run_id
    metas = {m["run_id"]: m for m in store.runs("2026-11")}
    assert metas[new.run_id]["current"] and not metas[old.run_id]["current"]
    assert store.resolve(month="2026-11") == new.run_id


def _age(folder: Path, seconds: float) -> None:
    """Move a folder's modification time `seconds` into the past."""
    st = folder.stat()
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns - int(seconds * 1e9)))


def test_a_reader_keeps_the_month_pointers_until_another_writer_changes_them(
    model: RiskModel, store: ScoreStore
) -> None:
    """A reader (the service) keeps every month's pointer in memory once the months folder has
    settled, and sees the next pointer update made by another process's store at once."""
    features = feature_frame(300)
    old = run_for(model, features)
    new = run_for(model, features, model_info=ModelInfo(MODEL.name, "2"))
    store.write(old)
    reader = ScoreStore(store.root)
    assert reader.current_run_id("2026-11") == old.run_id
    assert reader._snapshot is None  # the folder changed a moment ago: nothing kept yet
    _age(store.months_dir, 10)
    assert reader.months() == ["2026-11"] and reader._snapshot is not None
    pointer = store.months_dir / "2026-11.json"
    kept = pointer.read_text()
    pointer.write_text("not read")  # in place: the folder does not change, the kept copy serves
    assert reader.current_run_id("2026-11") == old.run_id
    pointer.write_text(kept)
    ScoreStore(store.root).write(new)  # another writer: the folder's time moves on
    assert reader.current_run_id("2026-11") == new.run_id
    assert reader.resolve(month="2026-11") == new.run_id


def test_two_consecutive_months_carry_flags(model: RiskModel, store: ScoreStore) -> None:
    rules = ListSettings(capacity=5, risen_by=0.05)
    october = feature_frame(300)
    store.write(run_for(model, october, month="2026-10", rules=rules))
    # November: one October-listed person is taken onto the MDT caseload; a low-risk person in the
    # same neighbourhood has six emergency admissions and takes the freed place.
    november = october.copy()
    last = store.people(store.current_run_id("2026-10")).set_index("person_id")
    taken = last.index[last["listed"]][0]
    november.loc[november["person_id"] == taken, "on_caseload_neighbourhood_mdt"] = 1
    same_hood = last["neighbourhood"] == last.loc[taken, "neighbourhood"]
    riser = last.index[same_hood & ~last["listed"] & (last["probability"] < 0.2)][0]
    november.loc[november["person_id"] == riser, ["emergency_admissions_12m", "efi_score"]] = [
        6.0,
        0.5,
    ]
    run = run_for(
        model, november, month="2026-11", rules=rules,
        previous=store.previous_list("2026-11"), listed_before=store.listed_before("2026-11"),
    )  # fmt: skip
    store.write(run)
    now = store.people(run.run_id).set_index("person_id")
    assert now.loc[taken, "excluded"] == "caseload_neighbourhood_mdt"
    assert now.loc[riser, "listed"] and now.loc[riser, "new_this_month"]
    assert now.loc[riser, "risk_risen"]
    carried = now[now["listed"] & now["on_last_month_list"]]
    assert len(carried) == 14 and not carried["new_this_month"].any()
    assert now.loc[now["listed"], "new_this_month"].sum() == 1
    assert run.meta["counts"]["new_this_month"] == 1


def test_failure_midway_leaves_the_previous_run_intact(
    model: RiskModel, store: ScoreStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    features = feature_frame(300)
    old = run_for(model, features)
    store.write(old)
    new = run_for(model, features, model_info=ModelInfo(MODEL.name, "2"))

    def fail_after_people(*args: object, **kwargs: object) -> None:
        raise OSError("disk full (injected)")

    # people.parquet and features.parquet are written, then writing run.json fails.
    monkeypatch.setattr(scoring.store, "_write_json", fail_after_people)
    with pytest.raises(OSError, match="injected"):
        store.write(new)
    monkeypatch.undo()
    assert not store.has_run(new.run_id)
    assert not (store.runs_dir / new.run_id).exists()
    assert list(store.staging_dir.iterdir()) == []
    assert store.current_run_id("2026-11") == old.run_id
    pd.testing.assert_frame_equal(store.people(old.run_id), old.people, check_dtype=False)
    # The same run then succeeds.
    store.write(new)
    assert store.current_run_id("2026-11") == new.run_id


def test_store_errors_name_what_is_missing(store: ScoreStore) -> None:
    with pytest.raises(StoreError, match="2026-11 has not been scored"):
        store.resolve(month="2026-11")
    with pytest.raises(StoreError, match="no stored run 'nope'"):
        store.resolve(run_id="nope")
    assert store.previous_list("2026-11") is None and store.listed_before("2026-11") == set()


def test_summary_reports_counts_exclusions_ppv_and_drift(model: RiskModel) -> None:
    features = feature_frame(400)
    features.loc[:9, "in_care_home"] = 1
    training = feature_frame(2000, seed=5)
    same = run_for(model, features, training=training)
    drift = pd.DataFrame(same.meta["drift"]).set_index("name")
    assert "score" in drift.index and drift["psi"].max() < 0.2
    assert not drift["warning"].any()
    shifted = features.copy()
    shifted["efi_score"] = shifted["efi_score"] + 0.3
    moved = run_for(model, shifted, training=training, rules=ListSettings(drift_warning_psi=0.2))
    drift = pd.DataFrame(moved.meta["drift"]).set_index("name")
    assert drift.loc["efi_score", "warning"] and drift.loc["score", "psi"] > 0.2
    # The drift warning is said once (with the run's other warnings), the table marks it.
    assert moved.summary.count("**Warning:** drift: PSI of efi_score") == 1
    assert "has drifted" not in moved.summary
    assert any("efi_score" in w for w in moved.meta["warnings"])
    text = same.summary
    for heading in ("## Per neighbourhood", "## Exclusions", "## Score distribution", "## Drift"):
        assert heading in text
    assert "| living in a care home | 10 | 10 |" in text
    assert "| died before the index date | 2 |" in text
    ppv = same.meta["counts"]["expected_ppv"]
    assert f"expected PPV {ppv:.3f}" in text


def test_no_training_sample_is_reported_not_hidden(model: RiskModel) -> None:
    run = run_for(model, feature_frame(200))
    assert run.meta["drift"] is None
    assert "Drift not measured" in run.summary
    assert any("drift not measured" in w for w in run.meta["warnings"])


def test_unknown_capacity_override_is_warned(model: RiskModel) -> None:
    run = run_for(
        model, feature_frame(200), rules=ListSettings(capacity_by_neighbourhood={"Westt": 5})
    )
    assert any("Westt" in w for w in run.meta["warnings"])
