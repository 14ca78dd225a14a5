"""Explanations: additivity, plain reasons that match the values, month-on-month changes, what-if,
and charts, on a small real LightGBM model trained on synthetic data with its own feature
definitions (independent of the features registry)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.definition import Feature
from models import charts
from models.explain import (
    MIN_POINTS,
    changes,
    contributions,
    explain,
    population_reference,
    probability_parts,
    what_if,
)
from models.reasons import change_sentence
from models.risk_model import PlattCalibrator, RiskModel

FEATURES = [
    Feature(
        "age", "demographics", "Age in years", "aged {value}", "age not recorded", "number", "p"
    ),
    Feature(
        "emergency_admissions_12m",
        "hospital use",
        "Emergency admissions in the last 12 months",
        "{value} emergency admission{s} in the last 12 months",
        "no emergency admissions in the last 12 months",
        "count",
        "hospital_spells",
        window="12 months",
    ),
    Feature(
        "falls_12m",
        "primary care and frailty",
        "Falls recorded in the last 12 months",
        "{value} fall{s} recorded in the last 12 months",
        "no falls recorded in the last 12 months",
        "count",
        "gp_events",
        window="12 months",
        adjustable=True,
    ),
    Feature(
        "lives_alone",
        "social care",
        "Lives alone",
        "lives alone",
        "does not live alone",
        "flag",
        "people",
    ),
    Feature(
        "home_care_hours_week",
        "social care",
        "Home care hours a week",
        "lives with a home care package of {value} hours a week",
        "no home care package",
        "number",
        "social_care_services",
        adjustable=True,
    ),
    Feature(
        "medicines",
        "prescribing",
        "Distinct medicines in the last 3 months",
        "on {value} medicine{s}",
        "no medicines in the last 3 months",
        "count",
        "prescriptions",
        window="3 months",
        adjustable=True,
    ),
    Feature(
        "days_since_ae",
        "hospital use",
        "Days since the last A&E attendance",
        "last A&E attendance {value} ago",
        "no A&E attendance on record",
        "days_since",
        "ae_attendances",
    ),
    Feature(
        "deprivation_decile",
        "place",
        "Index of Multiple Deprivation decile",
        "lives in an area of deprivation decile {label}",
        "deprivation not known",
        "code",
        "people",
        labels={
            d: f"{d} ({'most' if d == 1 else 'least' if d == 10 else 'mid'})" for d in range(1, 11)
        },
        adjustable=True,
    ),
]
NAMES = [f.name for f in FEATURES]
ADMISSION_CLAIM = re.compile(r"^\d[\d,]* emergency admission")


def make_rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ae = rng.integers(1, 700, n).astype(float)
    ae[rng.random(n) < 0.5] = np.nan
    return pd.DataFrame(
        {
            "person_id": [f"P{seed}-{i:05d}" for i in range(n)],
            "age": rng.integers(65, 100, n).astype(float),
            "emergency_admissions_12m": rng.poisson(0.4, n).astype(float),
            "falls_12m": rng.poisson(0.5, n).astype(float),
            "lives_alone": (rng.random(n) < 0.35).astype(float),
            "home_care_hours_week": np.where(rng.random(n) < 0.2, rng.integers(2, 30, n), 0.0),
            "medicines": rng.poisson(5, n).astype(float),
            "days_since_ae": ae,
            "deprivation_decile": rng.integers(1, 11, n).astype(float),
        }
    )


def outcome_logit(rows: pd.DataFrame) -> np.ndarray:
    recent_ae = (rows["days_since_ae"].fillna(9999) < 120).astype(float)
    return (
        -3.0
        + 0.04 * (rows["age"] - 75)
        + 0.6 * rows["emergency_admissions_12m"]
        + 0.5 * rows["falls_12m"]
        + 0.4 * rows["lives_alone"]
        + 0.04 * rows["home_care_hours_week"]
        + 0.08 * rows["medicines"]
        + 0.6 * recent_ae
        + 0.3 * (rows["deprivation_decile"] <= 3)
        # living alone with no admissions: more risk, so a zero count can carry positive SHAP
        + 2.0 * rows["lives_alone"] * (rows["emergency_admissions_12m"] == 0)
    ).to_numpy()


@pytest.fixture(scope="module")
def model() -> RiskModel:
    train, held = make_rows(6000, 1), make_rows(2000, 2)
    rng = np.random.default_rng(3)
    y_train = rng.random(len(train)) < 1 / (1 + np.exp(-outcome_logit(train)))
    y_held = rng.random(len(held)) < 1 / (1 + np.exp(-outcome_logit(held)))
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "learning_rate": 0.08,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "num_threads": 2,
        "seed": 1,
        # more falls never lowers risk: lets the what-if test know the model's direction
        "monotone_constraints": [1 if n == "falls_12m" else 0 for n in NAMES],
    }
    booster = lgb.train(params, lgb.Dataset(train[NAMES], y_train.astype(int)), 120)
    m = RiskModel(booster, PlattCalibrator(), NAMES, metadata={"name": "test", "version": "3"})
    m.calibrator.fit(m.margin(held), y_held.astype(int))
    return m


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return make_rows(400, 7)


def all_parts(e) -> list:
    return e.raising + e.lowering


# --- contributions ---------------------------------------------------------------------------


def test_base_plus_contributions_equals_margin_for_every_row(model, rows):
    base, contrib = contributions(model, rows)
    assert contrib.shape == (len(rows), len(NAMES))
    np.testing.assert_allclose(base + contrib.sum(axis=1), model.margin(rows), atol=1e-9)
    assert np.abs(contrib).max() > 0.1  # not a trivial decomposition


def test_lightgbm_pred_contrib_agrees_with_shap_tree_explainer(model, rows):
    import shap

    base, contrib = contributions(model, rows)
    # shap's default path for LightGBM calls LightGBM's own TreeSHAP ...
    sv = model.explainer.shap_values(rows[NAMES])
    np.testing.assert_allclose(contrib, sv, atol=1e-8)
    assert float(np.ravel(model.explainer.expected_value)[0]) == pytest.approx(base, abs=1e-9)
    # ... so also check against shap's independent C++ TreeSHAP on its own copy of the trees.
    independent = shap.TreeExplainer(model.booster)
    independent.model.model_type = "internal"
    own = independent.shap_values(rows[NAMES].to_numpy(float), check_additivity=False)
    np.testing.assert_allclose(contrib, own, atol=1e-8)


def test_contributions_of_no_rows_still_give_the_base(model, rows):
    base, contrib = contributions(model, rows.iloc[:0])
    assert contrib.shape == (0, len(NAMES))
    assert base == pytest.approx(contributions(model, rows.iloc[:3])[0])


def test_missing_model_column_is_named(model, rows):
    with pytest.raises(ValueError, match="falls_12m"):
        contributions(model, rows.drop(columns="falls_12m"))


# --- explanations ----------------------------------------------------------------------------


def test_probability_parts_start_from_the_mean_served_probability_and_add_up(model, rows):
    served = model.predict_proba(rows)
    ref = population_reference(model, rows)
    assert ref.probability == pytest.approx(served.mean(), abs=1e-15)
    for top_n in (3, len(NAMES)):
        explained = explain(model, rows, top_n=top_n, features=FEATURES, reference=ref)
        for e, p in zip(explained, served, strict=True):
            assert e.probability == pytest.approx(p, abs=1e-12)
            assert e.reference_probability == ref.probability
            parts = sum(r.probability_change for r in all_parts(e)) + e.other_probability_change
            assert e.reference_probability + parts == pytest.approx(p, abs=1e-12)
            logit = sum(r.log_odds for r in all_parts(e)) + e.other_log_odds
            assert e.base_margin + logit == pytest.approx(e.margin, abs=1e-9)
    # without a reference, the rows are their own: the same numbers
    (alone,) = explain(model, rows.iloc[[0]], features=FEATURES)
    assert alone.reference_probability == pytest.approx(served[0], abs=1e-15)
    assert alone.reference == "the people explained together"


def test_a_sampled_reference_is_tilted_to_the_whole_populations_mean_exactly(model):
    population = make_rows(3000, 11)
    mean = model.predict_proba(population).mean()
    ref = population_reference(model, population, size=300, seed=5)
    assert len(ref.weights) == 300 and ref.population == 3000
    assert ref.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert (ref.weights > 0).all()
    assert ref.weights @ ref.probabilities == pytest.approx(mean, abs=1e-13)
    again = population_reference(model, population, size=300, seed=5)
    assert np.array_equal(again.margins, ref.margins)  # seeded: the same background
    for e, p in zip(
        explain(model, population.iloc[:200], features=FEATURES, reference=ref),
        model.predict_proba(population.iloc[:200]),
        strict=True,
    ):
        parts = sum(r.probability_change for r in all_parts(e)) + e.other_probability_change
        assert ref.probability + parts == pytest.approx(p, abs=1e-12)


def test_rescaled_parts_keep_the_properties_the_docs_state(model, rows):
    ref = population_reference(model, rows)
    _, contrib = contributions(model, rows)
    margins = model.margin(rows)
    probs = model.calibrator.transform(margins)
    parts = probability_parts(model, contrib, margins, probs, ref)
    # every row adds up exactly from the reference to its served probability
    assert np.allclose(parts.sum(axis=1), probs - ref.probability, atol=1e-13, rtol=0)
    # a feature adding more for a person than for everyone in the background gets points > 0;
    # less than for everyone, points < 0
    for j in range(len(NAMES)):
        hi = contrib[:, j] > ref.contributions[:, j].max() + 1e-12
        lo = contrib[:, j] < ref.contributions[:, j].min() - 1e-12
        assert (parts[hi, j] > 0).all() and (parts[lo, j] < 0).all()
    # a feature whose contribution is the same for everyone gets nothing
    flat = contrib.copy()
    flat[:, 0] = 0.25
    flat_ref = replace(ref, contributions=np.where(np.arange(len(NAMES)) == 0, 0.25,
                                                   ref.contributions))  # fmt: skip
    assert np.allclose(probability_parts(model, flat, margins, probs, flat_ref)[:, 0], 0.0)


def test_reasons_are_ranked_limited_and_at_least_half_a_point(model, rows):
    for e in explain(model, rows, top_n=3, features=FEATURES):
        assert len(e.raising) <= 3 and len(e.lowering) <= 3
        ups = [r.probability_change for r in e.raising]
        downs = [r.probability_change for r in e.lowering]
        assert all(v >= MIN_POINTS for v in ups) and all(v <= -MIN_POINTS for v in downs)
        assert ups == sorted(ups, reverse=True) and downs == sorted(downs)
        assert e.band == model.band(np.array([e.probability]))[0]


def test_a_reason_is_a_concept_its_parts_summed_and_worded_by_its_most_telling_feature(model, rows):
    # the two hospital-ish inputs as one concept; the rest stand alone
    grouped = [
        replace(f, concept="hospital and falls", brief="{value} fall{s}")
        if f.name in ("emergency_admissions_12m", "falls_12m")
        else f
        for f in FEATURES
    ]
    ref = population_reference(model, rows)
    _, contrib = contributions(model, rows)
    margins = model.margin(rows)
    parts = probability_parts(model, contrib, margins, model.calibrator.transform(margins), ref)
    em, falls = NAMES.index("emergency_admissions_12m"), NAMES.index("falls_12m")
    seen = 0
    for r, e in enumerate(explain(model, rows, top_n=5, features=grouped, reference=ref)):
        for reason in all_parts(e):
            if reason.concept != "hospital and falls":
                assert reason.concept == reason.feature
                continue
            seen += 1
            assert reason.probability_change == pytest.approx(parts[r, em] + parts[r, falls])
            up = reason.probability_change > 0
            main = max((em, falls), key=lambda j: parts[r, j] if up else -parts[r, j])
            assert reason.feature == NAMES[main]
            if main == em and rows["falls_12m"].iloc[r] > 0:
                n = int(rows["falls_12m"].iloc[r])
                assert reason.sentence.endswith(f" ({n} fall{'' if n == 1 else 's'})")
        assert len({x.concept for x in all_parts(e)}) == len(all_parts(e))
    assert seen > 50


def test_reasons_say_what_the_values_are(model, rows):
    by_name = {f.name: f for f in FEATURES}
    absent_raising = 0
    explanations = explain(model, rows, top_n=len(NAMES), features=FEATURES)
    for e, (_, row) in zip(explanations, rows.iterrows(), strict=True):
        assert e.person_id == row["person_id"]
        for r in all_parts(e):
            value = row[r.feature]
            feat = by_name[r.feature]
            assert r.sentence == feat.phrase(value)
            if pd.isna(value):
                assert r.value is None
            else:
                assert r.value == float(value)
            if pd.isna(value) or value == 0:
                assert r.absent and r.sentence == feat.none_sentence
            else:
                assert not r.absent and r.sentence != feat.none_sentence
            if r.feature == "emergency_admissions_12m":
                claims = bool(ADMISSION_CLAIM.match(r.sentence))
                assert claims == (value > 0)
                if value == 0 and r.probability_change > 0:
                    absent_raising += 1
                    assert r in e.raising and r.sentence.startswith("no emergency admissions")
    # the data make "no admissions" raise risk for some people: the case is exercised
    assert absent_raising > 0


def test_count_reason_reads_as_its_value(model, rows):
    rows2 = rows.iloc[:1].assign(emergency_admissions_12m=2.0, home_care_hours_week=14.0)
    ref = population_reference(model, rows)
    (e,) = explain(model, rows2, top_n=len(NAMES), features=FEATURES, reference=ref)
    sentences = {r.feature: r.sentence for r in all_parts(e)}
    assert sentences["emergency_admissions_12m"] == "2 emergency admissions in the last 12 months"
    assert sentences["home_care_hours_week"] == (
        "lives with a home care package of 14 hours a week"
    )


def test_domain_groups_hold_the_shown_reasons_and_domain_totals(model, rows):
    _, contrib = contributions(model, rows)
    domains = [f.domain for f in FEATURES]
    for r, e in enumerate(explain(model, rows, top_n=2, features=FEATURES)):
        grouped = [x for g in e.domains for x in g.raising + g.lowering]
        assert sorted(grouped, key=id) == sorted(all_parts(e), key=id)
        for g in e.domains:
            assert all(x.domain == g.domain for x in g.raising + g.lowering)
            total = sum(contrib[r, j] for j, d in enumerate(domains) if d == g.domain)
            assert g.log_odds == pytest.approx(total, abs=1e-9)
        sizes = [abs(g.probability_change) for g in e.domains]
        assert sizes == sorted(sizes, reverse=True)


def test_explanation_is_json_serialisable(model, rows):
    ref = population_reference(model, rows)
    (e,) = explain(model, rows.iloc[[5]], features=FEATURES, reference=ref)
    data = json.loads(json.dumps(e.to_dict()))
    assert data["person_id"] == rows["person_id"].iloc[5]
    assert data["raising"][0].keys() >= {"feature", "domain", "sentence", "log_odds"}
    assert data["probability"] == pytest.approx(e.probability)


def test_no_rows_no_explanations(model, rows):
    assert explain(model, rows.iloc[:0], features=FEATURES) == []


def test_a_model_input_without_a_definition_is_named(model, rows):
    with pytest.raises(ValueError, match="medicines"):
        explain(model, rows, features=[f for f in FEATURES if f.name != "medicines"])


# --- what changed since last month ------------------------------------------------------------


def test_month_on_month_changes_add_up_and_read_in_words(model, rows):
    previous = rows.iloc[:200].copy()
    current = rows.iloc[20:220].copy()  # 20 people left, 20 joined
    current.iloc[0, current.columns.get_loc("emergency_admissions_12m")] = 0.0
    previous.loc[previous.person_id == current.person_id.iloc[0], "emergency_admissions_12m"] = 0.0
    current.iloc[0, current.columns.get_loc("emergency_admissions_12m")] = 2.0
    current.iloc[1, current.columns.get_loc("lives_alone")] = 1.0
    previous.loc[previous.person_id == current.person_id.iloc[1], "lives_alone"] = 0.0
    current["medicines"] += 1.0
    current = current.sample(frac=1.0, random_state=1)  # order does not matter

    found = changes(model, previous, current, top_n=len(NAMES), features=FEATURES)
    status = pd.Series([c.status for c in found]).value_counts().to_dict()
    assert status == {"both": 180, "new": 20, "gone": 20}
    p_prev = dict(zip(previous.person_id, model.predict_proba(previous), strict=True))
    p_cur = dict(zip(current.person_id, model.predict_proba(current), strict=True))
    for c in found:
        if c.status != "both":
            assert c.movements == []
            continue
        assert c.probability_change == pytest.approx(p_cur[c.person_id] - p_prev[c.person_id])
        moved = sum(m.probability_change for m in c.movements) + c.other_probability_change
        assert moved == pytest.approx(c.probability_change, abs=1e-9)
        assert sum(m.log_odds_change for m in c.movements) + c.other_log_odds_change == (
            pytest.approx(c.margin_change, abs=1e-9)
        )
    by_id = {c.person_id: c for c in found}
    first = {m.feature: m for m in by_id[current.person_id.loc[20]].movements}
    assert first["emergency_admissions_12m"].sentence == (
        "emergency admissions in the last 12 months: 0 → 2"
    )
    second = {m.feature: m for m in by_id[current.person_id.loc[21]].movements}
    assert second["lives_alone"].sentence == "new: lives alone"
    assert json.dumps(by_id[current.person_id.loc[21]].to_dict())


def test_changes_top_n_keeps_the_largest_moves_and_the_rest_as_other(model, rows):
    previous, current = rows.iloc[:50], rows.iloc[:50].assign(falls_12m=rows.falls_12m + 2)
    full = changes(model, previous, current, top_n=len(NAMES), features=FEATURES)
    short = changes(model, previous, current, top_n=2, features=FEATURES)
    for a, b in zip(full, short, strict=True):
        assert [m.feature for m in b.movements] == [m.feature for m in a.movements][:2]
        rest = sum(m.probability_change for m in b.movements) + b.other_probability_change
        assert rest == pytest.approx(a.probability_change, abs=1e-9)


def test_changes_refuse_repeated_person_ids(model, rows):
    twice = pd.concat([rows.iloc[:3], rows.iloc[:1]])
    with pytest.raises(ValueError, match="repeat 1 person id"):
        changes(model, twice, rows.iloc[:3], features=FEATURES)


# --- what if ----------------------------------------------------------------------------------


def test_what_if_falls_addressed_lowers_the_score_as_the_model_implies(model, rows):
    fallers = rows[rows.falls_12m >= 2].head(25)
    assert len(fallers) > 10
    lowered = 0
    for _, row in fallers.iterrows():
        result = what_if(model, row, {"falls_12m": 0}, features=FEATURES)
        expected = model.predict_proba(row.to_frame().T.assign(falls_12m=0.0))[0]
        assert result.after.probability == pytest.approx(expected, abs=1e-12)
        assert result.before.probability == pytest.approx(model.predict_proba(row.to_frame().T)[0])
        assert result.probability_change <= 1e-12  # monotone in falls: never raises
        lowered += result.probability_change < -1e-6
        assert result.changed == {"falls_12m": {"before": row.falls_12m, "after": 0.0}}
        assert [m.feature for m in result.movements] in ([], ["falls_12m"])
        moved = sum(m.probability_change for m in result.movements)
        moved += result.other_probability_change
        assert moved == pytest.approx(result.probability_change, abs=1e-9)
        falls_reason = [r for r in all_parts(result.after) if r.feature == "falls_12m"]
        assert all(r.sentence == "no falls recorded in the last 12 months" for r in falls_reason)
    assert lowered > len(fallers) // 2
    assert json.dumps(result.to_dict())


def test_what_if_direction_matches_the_booster_both_ways(model, rows):
    row = rows.iloc[[3]]
    for hours in (0.0, 10.0, 25.0):
        result = what_if(model, row, {"home_care_hours_week": hours}, features=FEATURES)
        margin_after = model.margin(row.assign(home_care_hours_week=hours))[0]
        assert result.margin_change == pytest.approx(margin_after - model.margin(row)[0])
        assert np.sign(result.probability_change) == np.sign(result.margin_change)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"walks_daily": 1}, "'walks_daily' is not a feature of this model"),
        ({"age": 70}, "'age' cannot be changed in a what-if"),
        ({"falls_12m": -1}, "'falls_12m' must be a whole number"),
        ({"falls_12m": 1.5}, "'falls_12m' must be a whole number"),
        ({"medicines": math.nan}, "'medicines' is missing"),
        ({"deprivation_decile": 11}, "'deprivation_decile' must be one of"),
        ({"home_care_hours_week": "lots"}, "'home_care_hours_week' is not a number"),
        ({}, "at least one feature"),
    ],
)
def test_what_if_rejects_bad_changes_by_name(model, rows, change, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        what_if(model, rows.iloc[[0]], change, features=FEATURES)


def test_what_if_names_every_bad_change_at_once(model, rows):
    with pytest.raises(ValueError, match=r"age.*walks"):
        what_if(model, rows.iloc[[0]], {"age": 70, "walks": 1, "falls_12m": 0}, features=FEATURES)


# --- charts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_waterfall_chart_is_written(model, rows, tmp_path, suffix):
    (e,) = explain(model, rows.iloc[[0]], features=FEATURES)
    path = charts.waterfall(e, tmp_path / f"person{suffix}")
    assert path.exists() and path.stat().st_size > 2000
    if suffix == ".svg":
        assert "<svg" in path.read_text()[:500]
    else:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_global_importance_chart_is_written_and_ranked(model, rows, tmp_path):
    table = charts.importance(model, rows, FEATURES)
    assert list(table.mean_abs_log_odds) == sorted(table.mean_abs_log_odds, reverse=True)
    assert set(table.feature) == set(NAMES)
    for suffix in (".png", ".svg"):
        path = charts.global_importance(model, rows, tmp_path / f"imp{suffix}", features=FEATURES)
        assert path.stat().st_size > 2000


def test_chart_path_needs_a_known_suffix(model, rows, tmp_path):
    (e,) = explain(model, rows.iloc[[0]], features=FEATURES)
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        charts.waterfall(e, tmp_path / "person.pdf")


def test_change_sentences_by_kind():
    by_name = {f.name: f for f in FEATURES}
    admissions, alone = by_name["emergency_admissions_12m"], by_name["lives_alone"]
    ae, decile = by_name["days_since_ae"], by_name["deprivation_decile"]
    assert change_sentence(admissions, 3, 1) == (
        "emergency admissions in the last 12 months: 3 → 1"
    )
    assert change_sentence(alone, 1, 0) == "no longer: lives alone"
    assert change_sentence(ae, math.nan, 12) == "new: last A&E attendance 12 days ago"
    assert change_sentence(ae, 40, 70) == "last A&E attendance 40 days ago → 2 months ago"
    assert change_sentence(ae, 400, 900) == "last A&E attendance 13 months ago → about 2 years ago"
    assert change_sentence(ae, 40, math.nan) == "no longer: last A&E attendance 40 days ago"
    assert change_sentence(decile, 2.0, 2.0).startswith(
        "lives in an area of deprivation decile 2 (mid) (unchanged"
    )
    unlabelled = Feature("team", "place", "Team", "served by team {label}", "no team", "code", "p")
    assert change_sentence(unlabelled, 3.0, 4.0) == "served by team 3 → 4"
    age = by_name["age"]
    assert change_sentence(age, 85, 86) == "aged 85 → 86"


def test_every_registry_feature_can_be_worded_for_any_value():
    import features
    from models.reasons import phrase

    for f in features.FEATURES:
        values = [0, 1, 2, 7.5, math.nan, None]
        if f.kind == "code" and f.labels:
            values = [*f.labels, math.nan]
        for value in values:
            text = phrase(f, value)
            assert text and "{" not in text, (f.name, value, text)
            if f.is_none(value):
                assert text == f.none_sentence
        assert change_sentence(f, values[0], values[1])
