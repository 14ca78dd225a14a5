"""The obvious way to do casefinder's job, as a data scientist would in a notebook: pandas
features at four index dates, LightGBM, predict for the month after the extract, SHAP for the
top 5%. `bench_reference.py` times it beside `casefinder train` + `casefinder score`.

    uv run python benchmarks/reference_pipeline.py EXTRACT [ROUNDS]

It validates nothing, logs nothing and registers nothing. Its features are generic: per event
table of the contract, the rows in the 12 and 3 months before the index date, plus age and sex.
The eligible population and the outcome label are casefinder's own definitions
(`features.cohort.eligibility_sql`, `features.outcome.outcome_sql`) run by DuckDB over the raw
files, so both pipelines predict the same thing for the same people.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date
from pathlib import Path

STARTED = time.perf_counter()

import duckdb  # noqa: E402
import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shap  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from config.settings import OutcomeSettings  # noqa: E402
from features.cohort import eligibility_sql  # noqa: E402
from features.dates import add_months, first_of_next_month  # noqa: E402
from features.outcome import outcome_sql  # noqa: E402
from records.contract import TABLES  # noqa: E402


def _tables(extract: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(extract / f"{name}.parquet") for name in TABLES}


def _features(tables: dict[str, pd.DataFrame], day: date, people: pd.Series) -> pd.DataFrame:
    """Generic counts before `day` per event table, age and sex, for `people`."""
    d = pd.Timestamp(day)
    out = pd.DataFrame(index=pd.Index(people, name="person_id"))
    p = tables["people"].set_index("person_id").reindex(out.index)
    out["age"] = (d - pd.to_datetime(p["birth_date"])).dt.days // 365.25
    out["female"] = (p["sex"] == "F").astype(float)
    for name, spec in TABLES.items():
        if spec.date_column is None:
            continue
        t = tables[name]
        when = pd.to_datetime(t[spec.date_column])
        for months in (12, 3):
            start = pd.Timestamp(add_months(day, -months))
            window = t.loc[(when >= start) & (when < d), "person_id"]
            out[f"{name}_{months}m"] = window.value_counts().reindex(out.index, fill_value=0)
    return out


def main(extract: Path, rounds: int = 300) -> dict[str, float]:
    times: dict[str, float] = {"imports": time.perf_counter() - STARTED}
    t = time.perf_counter()
    tables = _tables(extract)
    con = duckdb.connect()
    for name, frame in tables.items():
        con.register(name, frame)
    manifest = json.loads((extract / "manifest.json").read_text())
    extract_date = date.fromisoformat(manifest["extract_date"])
    times["read"] = time.perf_counter() - t

    t = time.perf_counter()
    latest = add_months(extract_date, -12).replace(day=1)
    dates = [add_months(latest, -3 * k) for k in range(4)][::-1]
    rows = []
    for day in dates:
        label = con.sql(outcome_sql(day, OutcomeSettings())).df()[["person_id", "outcome"]]
        x = _features(tables, day, label["person_id"].astype(str))
        rows.append((day, x, label["outcome"].to_numpy()))
    times["features and labels (4 dates)"] = time.perf_counter() - t

    t = time.perf_counter()
    train_x = pd.concat([x for _, x, _ in rows[:-1]])
    train_y = np.concatenate([y for _, _, y in rows[:-1]])
    params = {
        "objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "verbose": -1,
        "num_threads": 2,  # the machine's cores: LightGBM's default spins badly on a busy host
    }  # fmt: skip
    booster = lgb.train(params, lgb.Dataset(train_x, train_y), num_boost_round=rounds)
    test_x, test_y = rows[-1][1], rows[-1][2]
    auroc = roc_auc_score(test_y, booster.predict(test_x))
    times["train and test"] = time.perf_counter() - t

    t = time.perf_counter()
    day = first_of_next_month(extract_date)
    eligible = con.sql(f"SELECT person_id FROM people p WHERE {eligibility_sql(day)}").df()
    now = _features(tables, day, eligible["person_id"].astype(str))
    risk = booster.predict(now)
    top = now.iloc[np.argsort(-risk)[: max(1, len(now) // 20)]]
    shap.TreeExplainer(booster).shap_values(top)
    times["predict and SHAP (top 5%)"] = time.perf_counter() - t
    times["auroc"] = float(auroc)
    times["scored"] = float(len(now))
    return times


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), *(int(a) for a in sys.argv[2:3]))
    result["total"] = time.perf_counter() - STARTED
    print(json.dumps(result))
