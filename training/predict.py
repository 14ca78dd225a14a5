"""Score every eligible person in an extract at one index date with a registered model."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import Settings, load_settings
from models.registry import CHAMPION, load_risk_model
from models.risk_model import RiskModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

    from records import Extract
    from records.spark import SparkExtract

OUTPUT_COLUMNS = ["person_id", "index_date", "probability", "band", "model_version"]


def score_rows(model: RiskModel, rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """person_id, index_date, probability, band and model version for each row."""
    probability = model.predict_proba(rows)
    return output_frame(rows, probability, model.band(probability), version)


def output_frame(
    rows: pd.DataFrame, probability: np.ndarray, band: np.ndarray, version: str
) -> pd.DataFrame:
    """The output table: `rows`' person_id and index_date with each row's score."""
    return pd.DataFrame(
        {
            "person_id": rows["person_id"].astype(str).to_numpy(),
            "index_date": pd.to_datetime(rows["index_date"]).dt.date.to_numpy(),
            "probability": np.asarray(probability, dtype=float),
            "band": np.asarray(band).astype(str),
            "model_version": str(version),
        }
    )


def score_extract(
    extract: Extract, index_date: date, model: RiskModel, version: str
) -> pd.DataFrame:
    """Score every eligible person of a loaded extract at `index_date`. On Spark the features
    stay on the executors, which score them (`models.spark_scoring`); only the output columns
    reach the driver. Rows in person_id order on both engines."""
    import features

    if extract.engine != "spark":
        features.check_index_date(extract.manifest, index_date)
        return score_rows(model, features.build_features(extract, index_date), version)
    out = scores_df(extract, index_date, model, version).toPandas()  # type: ignore[arg-type]
    return output_frame(out, out["probability"].to_numpy(float), out["band"].to_numpy(), version)


def scores_df(
    extract: SparkExtract, index_date: date, model: RiskModel, version: str
) -> SparkDataFrame:
    """`score_extract`'s table on a Spark extract as a Spark DataFrame (`OUTPUT_COLUMNS`, by
    person_id), scored on the executors (`models.spark_scoring`), nothing collected."""
    from pyspark.sql import functions as F

    import features
    from models.spark_scoring import score_on_executors

    features.check_index_date(extract.manifest, index_date)
    df = features.build_features_df(extract, index_date)
    scored = score_on_executors(model, df, keep=["person_id", "index_date"])
    return scored.select(
        "person_id", "index_date", "probability", "band", F.lit(str(version)).alias("model_version")
    ).orderBy("person_id")


def predict(
    extract_dir: Path,
    index_date: date,
    settings: Settings | None = None,
    model_ref: str = CHAMPION,
    progress: ProgressFn | None = None,
) -> pd.DataFrame:
    """Score every eligible person (65+, alive, registered) at `index_date`, which may be the
    day after the extract ends. Raises `features.FeatureError` for an unusable date and
    `models.registry.RegistryError` when the model does not exist."""
    from records import open_extract

    settings = settings or load_settings()
    progress = progress or no_progress
    model, version = load_risk_model(settings, model_ref)
    extract = open_extract(Path(extract_dir), settings, progress)
    try:
        scores = score_extract(extract, index_date, model, version)
    finally:
        extract.close()
    progress("score", 1.0)
    return scores


def write_predictions_on_spark(
    extract_path: str,
    index_date: date,
    out: str,
    settings: Settings,
    model_ref: str = CHAMPION,
    progress: ProgressFn | None = None,
) -> tuple[int, str]:
    """`predict` on Spark with its table written by Spark itself at `out` (a folder of Parquet
    part files by person_id, a local path or any Hadoop URI, replacing what is there), so no
    person's score reaches the driver; `pandas.read_parquet(out)` gives `predict`'s table.
    Returns the number of people scored and the model version."""
    from records import open_extract
    from records.spark import write_parquet

    progress = progress or no_progress
    model, version = load_risk_model(settings, model_ref)
    extract = open_extract(extract_path, settings, progress)
    try:
        progress("score", 0.0)
        written = write_parquet(scores_df(extract, index_date, model, version), out)  # type: ignore[arg-type]
        rows = written.count()
    finally:
        extract.close()
    progress("score", 1.0)
    return rows, str(version)
