"""Score every eligible person in an extract at one index date with a registered model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from config.progress import ProgressFn, no_progress
from config.settings import Settings, load_settings
from models.registry import CHAMPION, load_risk_model
from models.risk_model import RiskModel

OUTPUT_COLUMNS = ["person_id", "index_date", "probability", "band", "model_version"]


def score_rows(model: RiskModel, rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """person_id, index_date, probability, band and model version for each row."""
    probability = model.predict_proba(rows)
    return pd.DataFrame(
        {
            "person_id": rows["person_id"].astype(str).to_numpy(),
            "index_date": pd.to_datetime(rows["index_date"]).dt.date.to_numpy(),
            "probability": probability,
            "band": model.band(probability).astype(str),
            "model_version": str(version),
        }
    )


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
    import features
    from records import open_extract

    settings = settings or load_settings()
    progress = progress or no_progress
    model, version = load_risk_model(settings, model_ref)
    extract = open_extract(Path(extract_dir), settings, progress)
    features.check_index_date(extract.manifest, index_date)
    rows = features.build_features(extract, index_date)
    progress("score", 1.0)
    return score_rows(model, rows, version)
