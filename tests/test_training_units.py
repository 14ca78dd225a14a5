"""Training building blocks without MLflow: metrics, dates, split, the modelled population,
fairness, the saved model format and the model card."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from test_training_support import HAND_FEATURES, hand_panel

from config.settings import ListSettings, Settings, TrainingSettings
from features.cohort import exclusion_flags, modelled_population, population_rules
from models.card import render_model_card
from models.flavour import load_risk_model_dir, save_risk_model
from models.risk_model import PlattCalibrator, RiskModel
from training.data import (
    TrainingError,
    person_split,
    split_panel,
    training_index_dates,
)
from training.evaluation import list_share
from training.fairness import fairness_table, flagged_groups
from training.metrics import (
    auroc_difference,
    calibration_slope_intercept,
    decile_table,
    evaluate,
    list_flags,
    top_share_flags,
)
from training.train import train_on_panel

RNG = np.random.default_rng(3)


def _calibrated(n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    p = 1 / (1 + np.exp(-RNG.normal(-2, 1.2, n)))
    return (RNG.random(n) < p).astype(int), p


def test_calibration_slope_is_one_for_true_risks_and_below_one_when_overconfident() -> None:
    y, p = _calibrated()
    slope, intercept = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(1.0, abs=0.03)
    assert intercept == pytest.approx(0.0, abs=0.03)
    logit = np.log(p / (1 - p))
    overconfident = 1 / (1 + np.exp(-2 * logit))
    slope2, _ = calibration_slope_intercept(y, overconfident)
    assert slope2 == pytest.approx(0.5, abs=0.03)
    too_high = 1 / (1 + np.exp(-(logit + 1)))
    _, intercept3 = calibration_slope_intercept(y, too_high)
    assert intercept3 == pytest.approx(-1.0, abs=0.05)


def test_decile_table_and_evaluate() -> None:
    y, p = _calibrated(400_000)
    table = decile_table(y, p)
    assert list(table["decile"]) == list(range(1, 11))
    assert table["rows"].sum() == len(y)
    assert table["observed"].sum() == y.sum()
    assert table["mean_risk"].is_monotonic_increasing
    assert table["oe_ratio"].between(0.8, 1.2).all()
    metrics = evaluate(y, p, (0.01, 0.05))
    assert 0.7 < metrics["auroc"] < 0.9
    assert metrics["ppv_top_1pct"] > metrics["ppv_top_5pct"] > metrics["prevalence"]
    assert metrics["sensitivity_top_5pct"] > metrics["sensitivity_top_1pct"]
    assert metrics["oe_ratio"] == pytest.approx(1.0, abs=0.05)


def test_list_flags_take_each_neighbourhoods_share() -> None:
    p = np.linspace(0, 1, 300)
    hood = np.array(["A"] * 100 + ["B"] * 200)
    flags = list_flags(p, hood, {"A": 0.1, "B": 0.05})
    assert flags[:100].sum() == 10 and flags[100:].sum() == 10
    assert flags[90:100].all() and flags[290:].all()
    assert top_share_flags(p, 0.001).sum() == 1  # at least one row


def test_training_index_dates_end_at_the_latest_observed_date() -> None:
    settings = TrainingSettings(index_dates=8, every_months=3, history_months=12)
    dates = training_index_dates(date(2019, 1, 1), date(2025, 11, 1), settings)
    assert dates[-1] == date(2025, 10, 1)
    assert len(dates) == 8 and dates[0] == date(2024, 1, 1)
    assert all(d.day == 1 for d in dates)
    short = training_index_dates(date(2023, 6, 15), date(2025, 10, 1), settings)
    assert short[0] >= date(2024, 7, 1)


def test_training_index_dates_follow_records_that_start_on_a_month_end() -> None:
    settings = TrainingSettings(index_dates=12, every_months=1, history_months=13)
    # 31 January 2022 + 13 months is 28 February 2023 (clamped): the first index date is 1 March.
    dates = training_index_dates(date(2022, 1, 31), date(2023, 10, 1), settings)
    assert dates == [date(2023, m, 1) for m in range(3, 11)]


def test_outcome_text_follows_the_outcome_settings() -> None:
    from config.settings import OutcomeSettings
    from training.description import describe_outcome

    text = describe_outcome(OutcomeSettings())
    assert text.startswith("Within 12 months of the index date, at least 2 of these agencies")
    assert (
        "community health (a community_contacts row with service intermediate_care or 6+ "
        "community_contacts row with service district_nursing/community_matron)" in text
    )
    assert text.endswith(
        "; or always when a social_care row with service_type "
        "long_term_residential/long_term_nursing, event_type service."
    )
    changed = describe_outcome(OutcomeSettings(window_months=6, min_agencies=3, always_counts=[]))
    assert changed.startswith("Within 6 months of the index date, at least 3 of these agencies")
    assert "always" not in changed and changed.endswith("older_adult_cmht).")


def test_no_complete_outcome_window_is_a_clear_error() -> None:
    settings = TrainingSettings(history_months=12)
    with pytest.raises(TrainingError, match="no complete outcome window") as err:
        training_index_dates(date(2025, 3, 1), date(2025, 10, 1), settings)
    assert "2025-10-01" in str(err.value)


def test_people_are_split_once_and_stably() -> None:
    ids = pd.Series([f"P{i}" for i in range(20_000)])
    settings = TrainingSettings(test_fraction=0.25, validation_fraction=0.2)
    groups = person_split(ids, settings)
    assert (groups == person_split(ids, settings)).all()
    shares = pd.Series(groups).value_counts(normalize=True)
    assert shares["test"] == pytest.approx(0.25, abs=0.02)
    assert shares["validation"] == pytest.approx(0.2, abs=0.02)
    other = person_split(ids, settings.model_copy(update={"split_seed": 99}))
    assert (groups != other).any()


def test_split_by_time_never_puts_a_person_in_two_sets() -> None:
    panel = hand_panel(2000)
    split = split_panel(panel, TrainingSettings(min_train_outcomes=10, min_eval_outcomes=5))
    people = [set(s["person_id"]) for s in (split.train, split.validation, split.test)]
    assert not (people[0] & people[1]) and not (people[0] & people[2])
    assert not (people[1] & people[2])
    assert max(split.train_dates) < min(split.validation_dates) < min(split.test_dates)
    assert set(pd.to_datetime(split.test["index_date"]).dt.date) == {max(split.test_dates)}
    assert split.counts()["test_rows"] == len(split.test)


def test_too_few_outcomes_is_a_clear_error() -> None:
    panel = hand_panel(300)
    panel["outcome"] = 0
    panel.loc[panel.index[:3], "outcome"] = 1
    with pytest.raises(TrainingError, match="too few outcomes to train"):
        split_panel(panel, TrainingSettings())


def _listed(panel: pd.DataFrame, settings: Settings) -> pd.Series:
    """The listed population's rule set on the panel (what the monthly lists leave in)."""
    return ~exclusion_flags(panel, settings.lists).any(axis=1)


def test_modelled_population_is_the_listed_one_less_opt_outs_and_named_caseloads() -> None:
    panel = hand_panel(3000)
    opted_out = panel["data_opt_out"].astype(bool)
    matron = panel["on_caseload_community_matron"].astype(bool)
    settings = Settings(lists=ListSettings(), training=TrainingSettings())  # the defaults
    modelled = modelled_population(panel, settings)
    assert settings.training.also_exclude_caseloads == []
    assert (modelled == (_listed(panel, settings) & ~opted_out)).all()
    assert not panel[modelled][["data_opt_out", "in_care_home"]].any(axis=None)
    for caseload in settings.lists.exclude_caseloads:
        assert not panel.loc[modelled, f"on_caseload_{caseload}"].any()
    # Community matron caseloads are listed by default, so their people are trained on.
    assert "community_matron" not in settings.lists.exclude_caseloads
    assert (modelled & matron).any()

    # Where the lists include opted-out people (direct care), training still leaves them out.
    direct = settings.model_copy(
        update={"lists": settings.lists.model_copy(update={"direct_care_use": True})}
    )
    assert (_listed(panel, direct) & opted_out).any()
    assert (modelled_population(panel, direct) == (_listed(panel, direct) & ~opted_out)).all()

    # `[training] also_exclude_caseloads` leaves further caseloads out of training only.
    fewer = settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={"also_exclude_caseloads": ["community_matron"]}
            )
        }
    )
    assert (_listed(panel, fewer) == _listed(panel, settings)).all()
    assert (modelled_population(panel, fewer) == (modelled & ~matron)).all()
    assert any("community matron" in rule for rule in population_rules(fewer))

    # With no list exclusions, the modelled population is everyone who has not opted out.
    everyone = settings.model_copy(
        update={
            "lists": ListSettings(exclude_caseloads=[], exclude_care_home=False),
            "training": TrainingSettings(),
        }
    )
    assert (modelled_population(panel, everyone) == ~opted_out).all()


def test_training_without_a_population_flag_is_a_clear_error(tmp_path: Path) -> None:
    panel = hand_panel(500).drop(columns="in_care_home")
    with pytest.raises(TrainingError, match="in_care_home"):
        settings = Settings(home=tmp_path, lists=ListSettings(), training=TrainingSettings())
        train_on_panel(panel, HAND_FEATURES, settings, {"path": "hand panel"})
    assert not any(tmp_path.iterdir())  # stopped before anything was logged


def test_fairness_flags_only_a_group_that_is_miscalibrated() -> None:
    panel = hand_panel(20_000, dates=[date(2024, 1, 1)])
    y = panel["outcome"].to_numpy()
    p = panel["true_risk"].to_numpy().copy()
    settings = TrainingSettings()
    flags = list_flags(p, panel["neighbourhood"].to_numpy(), {"North": 0.05, "South": 0.05})
    fair = fairness_table(panel, y, p, flags, settings)
    assert set(fair["attribute"]) == {
        "all",
        "sex",
        "age band",
        "IMD quintile",
        "ethnicity group",
        "neighbourhood",
    }
    assert set(fair.loc[fair["attribute"] == "age band", "group"]) == {"65-74", "75-84", "85+"}
    assert fair.loc[0, "rows"] == len(panel)
    assert not flagged_groups(fair)
    women = (panel["sex"] == 2).to_numpy()
    p[women] = np.clip(p[women] * 2, 0, 0.99)  # risk of women overstated: O/E about 0.5
    fair = fairness_table(panel, y, p, flags, settings)
    assert "sex=female" in flagged_groups(fair)
    row = fair[(fair["attribute"] == "sex") & (fair["group"] == "female")].iloc[0]
    assert "observed/expected" in row["flag"] and row["oe_ratio"] < 0.7


def test_saved_risk_model_scores_the_same(tmp_path: Path) -> None:
    panel = hand_panel(1000, dates=[date(2024, 1, 1)])
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 7},
        lgb.Dataset(panel[HAND_FEATURES].astype(float), label=panel["outcome"]),
        num_boost_round=20,
    )
    model = RiskModel(
        booster, PlattCalibrator(0.9, -0.1), HAND_FEATURES, metadata={"trained_at": "x"}
    )
    loaded = load_risk_model_dir(save_risk_model(model, tmp_path / "m"))
    assert loaded.feature_names == HAND_FEATURES
    assert loaded.calibrator == model.calibrator
    assert loaded.bands == model.bands and loaded.metadata == {"trained_at": "x"}
    np.testing.assert_allclose(loaded.predict_proba(panel), model.predict_proba(panel))
    with pytest.raises(FileNotFoundError, match="not a saved risk model"):
        load_risk_model_dir(tmp_path)


def test_model_card_refuses_a_missing_field() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render_model_card({"registered_model": "x"})


def test_using_a_store_does_not_leak_its_uri_into_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from config.settings import MlflowSettings
    from models.registry import use_tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    first = Settings(home=tmp_path / "a", mlflow=MlflowSettings())
    second = Settings(home=tmp_path / "b", mlflow=MlflowSettings())
    use_tracking(first)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert second.tracking_uri.endswith("/b/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    use_tracking(first)
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:9"


def test_delong_difference_matches_auroc_and_a_bootstrap_of_it() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    n = 4000
    y = (rng.random(n) < 0.15).astype(int)
    a = y * 1.0 + rng.normal(size=n)
    b = 0.6 * a + y * 0.3 + rng.normal(size=n)  # correlated with a, as two models on one panel
    result = auroc_difference(y, a, b)
    assert result.difference == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b))
    boot = []
    for _ in range(300):
        i = rng.integers(0, n, n)
        boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert result.se == pytest.approx(np.std(boot), rel=0.2)
    assert result.ci_low < result.difference < result.ci_high
    assert result.ci_high - result.ci_low == pytest.approx(2 * 1.959964 * result.se)
    assert result.ci_low > 0 and result.p_value < 0.001  # a is the better score


def test_delong_difference_of_a_score_with_itself_or_a_monotone_copy_is_nil() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random(500) < 0.3).astype(int)
    a = rng.normal(size=500) + y
    same = auroc_difference(y, a, np.exp(a))
    assert same.difference == pytest.approx(0.0, abs=1e-12)
    assert same.se == pytest.approx(0.0, abs=1e-9) and same.p_value == 1.0
    noise = auroc_difference(y, a, rng.normal(size=500))
    assert noise.difference > 0 and noise.ci_low > 0
    lonely = auroc_difference(np.array([1, 0, 0, 0]), np.arange(4.0), np.arange(4.0))
    assert np.isnan(lonely.difference)  # one positive: no variance to estimate


def test_list_metrics_use_each_neighbourhoods_list_capacity() -> None:
    test_day = date(2025, 1, 1)
    modelled = pd.DataFrame(
        {
            "index_date": [test_day] * 300 + [date(2024, 10, 1)] * 50,
            "neighbourhood": ["North"] * 200 + ["South"] * 100 + ["North"] * 50,
        }
    )
    lists = ListSettings(capacity=20, capacity_by_neighbourhood={"South": 5})
    assert list_share(modelled, [test_day], lists) == {"North": 0.1, "South": 0.05}
    assert list_share(modelled, [test_day], ListSettings(capacity=500)) == {
        "North": 1.0,
        "South": 1.0,
    }


def test_median_imputer_gives_scikit_learns_median_imputation_with_indicators() -> None:
    from sklearn.impute import SimpleImputer

    from training.baselines import MedianImputer

    rng = np.random.default_rng(3)
    fit_rows = rng.normal(size=(401, 6)).round(1)  # ties, and an odd count per column
    fit_rows[rng.random(fit_rows.shape) < 0.3] = np.nan
    fit_rows[:, 2] = np.nan  # no value at all: imputed as 0, kept, with its indicator
    fit_rows[:, 4] = rng.normal(size=401)  # nothing missing: no indicator
    fit_rows[0, 5] = np.nan
    fit_rows[1:, 5] = np.repeat([1.0, 2.0], 200)  # an even count: the middle two averaged
    new_rows = rng.normal(size=(50, 6))
    new_rows[rng.random(new_rows.shape) < 0.3] = np.nan  # column 4 missing only here
    frame = pd.DataFrame(fit_rows, columns=[f"f{i}" for i in range(6)])

    ours = MedianImputer().fit(frame)
    theirs = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)
    theirs.fit(frame)
    assert ours.statistics_[5] == 1.5 and ours.statistics_[2] == 0.0
    np.testing.assert_array_equal(ours.statistics_, theirs.statistics_)
    for rows in (frame, pd.DataFrame(new_rows, columns=frame.columns)):
        mine = ours.transform(rows)
        assert mine.shape == (len(rows), 6 + 5)
        np.testing.assert_array_equal(mine, theirs.transform(rows))
    assert not np.isnan(ours.transform(new_rows)).any()


def test_shap_importance_on_a_thread_is_the_seeded_samples() -> None:
    from training.importance import SHAP_SAMPLE, run_importance, run_importance_on_thread

    rng = np.random.default_rng(3)
    rows = pd.DataFrame(rng.normal(size=(SHAP_SAMPLE + 500, 4)), columns=list("abcd"))
    rows["outcome"] = (rows["a"] + rng.normal(size=len(rows)) > 1).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1},
        lgb.Dataset(rows[list("abcd")], rows["outcome"]),
        num_boost_round=10,
    )
    future = run_importance_on_thread(booster, rows, list("abcd"), seed=7)
    expected = run_importance(booster, rows, list("abcd"), seed=7)
    pd.testing.assert_series_equal(future.result(timeout=60), expected)
    assert expected.idxmax() == "a"
    # the seed picks the rows: another seed, other numbers
    assert not np.allclose(run_importance(booster, rows, list("abcd"), seed=8), expected)
