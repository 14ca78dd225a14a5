"""Month-on-month flags follow the runs that exist: a month scored after a later one (a site
backfilling October after November) changes the later month's flags, counts note and run id."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_scoring_support import EXTRACT, MODEL, feature_frame, run_for, train_model

from config.settings import ListSettings, SegmentSettings
from scoring.exports import list_table
from scoring.history import MONTH_COLUMNS
from scoring.run import run_id_for
from scoring.store import ScoreStore

RULES = ListSettings(capacity=6, risen_by=0.01)
SEGMENTS = SegmentSettings()


def _months() -> tuple[pd.DataFrame, pd.DataFrame]:
    october = feature_frame(300, seed=0)
    november = feature_frame(300, seed=0)
    # November: a third of people a little sicker, so some rise and the lists overlap.
    sicker = november.index % 3 == 0
    november.loc[sicker, "emergency_admissions_12m"] += 2
    return october, november


def test_scoring_an_earlier_month_later_updates_the_later_months_flags(tmp_path: Path) -> None:
    model = train_model()
    october, november = _months()
    store = ScoreStore(tmp_path / "scores")
    nov_first = run_for(model, november, month="2026-11", rules=RULES)
    store.write(nov_first)
    first = store.people(nov_first.run_id)
    assert first.loc[first["listed"], "new_this_month"].all()  # nothing earlier: all new
    assert not store.meta(nov_first.run_id)["history_changed"]

    oct_run = run_for(model, october, month="2026-10", rules=RULES)
    store.write(oct_run)
    assert store.meta(nov_first.run_id)["history_changed"]

    # The flags November would have had, scored after October (the scoring run's own rules).
    expected = run_for(
        model, november, month="2026-11", rules=RULES,
        previous=store.previous_list("2026-11"), listed_before=store.listed_before("2026-11"),
    ).people  # fmt: skip
    now = store.people(nov_first.run_id)
    for column in MONTH_COLUMNS:
        pd.testing.assert_series_equal(now[column], expected[column], check_dtype=False)
    listed = now[now["listed"]]
    was = set(store.people(oct_run.run_id).query("listed")["person_id"])
    ids = set(listed["person_id"])
    assert set(listed.loc[listed["on_last_month_list"], "person_id"]) == ids & was
    assert set(listed.loc[listed["new_this_month"], "person_id"]) == ids - was
    assert listed["on_last_month_list"].any() and listed["risk_risen"].any()
    # The list export and a column subset read the same flags; the stored file is untouched.
    table = list_table(now)
    assert table["risk_risen"].any() and not (table["flags"] == "new this month").all()
    assert store.people(nov_first.run_id, ["person_id", "risk_risen"])["risk_risen"].any()
    assert not store.stored_people(nov_first.run_id)["risk_risen"].any()
    # Its stored summary says its counts are out of date.
    assert "out of date" in store.summary(nov_first.run_id)
    assert "out of date" not in store.summary(oct_run.run_id)


def test_a_month_scored_against_other_earlier_runs_gets_another_run_id(tmp_path: Path) -> None:
    """So `casefinder score` does not reuse a stored run whose flags were computed against
    earlier runs that are no longer current."""
    model = train_model()
    october, november = _months()
    store = ScoreStore(tmp_path / "scores")
    alone = run_for(model, november, month="2026-11", rules=RULES)
    store.write(alone)
    store.write(run_for(model, october, month="2026-10", rules=RULES))
    history = store.history("2026-11")
    assert history == {"2026-10": store.current_run_id("2026-10")}
    assert run_id_for("2026-11", MODEL, EXTRACT["fingerprint"], RULES, SEGMENTS) == alone.run_id
    assert run_id_for("2026-11", MODEL, EXTRACT["fingerprint"], RULES, SEGMENTS, history) != (
        alone.run_id
    )


@pytest.mark.parametrize("columns", [["person_id", "listed"], None])
def test_reading_a_run_with_unchanged_history_reads_it_as_stored(
    tmp_path: Path, columns: list[str] | None
) -> None:
    model = train_model()
    october, _ = _months()
    store = ScoreStore(tmp_path / "scores")
    run = run_for(model, october, month="2026-10", rules=RULES)
    store.write(run)
    pd.testing.assert_frame_equal(
        store.people(run.run_id, columns), store.stored_people(run.run_id, columns)
    )
