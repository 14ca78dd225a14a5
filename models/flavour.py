"""RiskModel on disk and as an MLflow pyfunc model.

On disk a RiskModel is a folder: `booster.txt` (LightGBM's text format) and `risk_model.json`
(calibrator, feature order, bands, metadata). Each version is logged as an MLflow pyfunc model
from code (`models/pyfunc_code.py`, MLflow's recommended form: no pickled object); its wrapper
loads that folder from the model's artifacts; `predict` returns probability, margin and band for
each input row. `models.registry` reads the folder straight from the version's artifacts
(cached on disk by version). MLflow is imported only to log a version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.artifacts import MODEL_NAME
from models.risk_model import PlattCalibrator, RiskModel

# The pyfunc definition logged as code with every version (MLflow's "models from code").
CODE_FILE = Path(__file__).with_name("pyfunc_code.py")
BOOSTER_FILE = "booster.txt"
META_FILE = "risk_model.json"
ARTIFACT_KEY = "risk_model"
FORMAT_VERSION = 1


def save_risk_model(model: RiskModel, folder: Path) -> Path:
    """Write `model` into `folder` (created); return the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.booster.save_model(str(folder / BOOSTER_FILE))
    meta = {
        "format_version": FORMAT_VERSION,
        "calibrator": {"slope": model.calibrator.slope, "intercept": model.calibrator.intercept},
        "feature_names": list(model.feature_names),
        "bands": [[name, low] for name, low in model.bands],
        "metadata": model.metadata,
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return folder


def load_risk_model_dir(folder: Path) -> RiskModel:
    """Read a RiskModel written by `save_risk_model`."""
    folder = Path(folder)
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path}: not a saved risk model")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    booster = lgb.Booster(model_file=str(folder / BOOSTER_FILE))
    return RiskModel(
        booster=booster,
        calibrator=PlattCalibrator(**meta["calibrator"]),
        feature_names=list(meta["feature_names"]),
        bands=tuple((str(name), float(low)) for name, low in meta["bands"]),
        metadata=dict(meta.get("metadata", {})),
    )


def pyfunc_output(model: RiskModel, rows: pd.DataFrame) -> pd.DataFrame:
    """What the pyfunc model returns for `rows`: probability, margin and band per row."""
    margin, probability = model.scores(rows)
    return pd.DataFrame(
        {"probability": probability, "margin": margin, "band": model.band(probability).astype(str)}
    )


def model_input_frame(model: RiskModel, rows: pd.DataFrame) -> pd.DataFrame:
    """The feature columns as float64 (the signature type; no `category` columns)."""
    return model.frame(rows).astype(np.float64)


def log_risk_model(
    model: RiskModel,
    example_rows: pd.DataFrame,
    work_dir: Path,
    registered_model_name: str | None = None,
    name: str = MODEL_NAME,
) -> Any:
    """Log `model` in the active MLflow run as a pyfunc with signature and input example;
    register it under `registered_model_name` when given. Returns MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import infer_signature

    folder = save_risk_model(model, Path(work_dir) / ARTIFACT_KEY)
    example = model_input_frame(model, example_rows.head(5)).reset_index(drop=True)
    output = pyfunc_output(model, example)
    signature = infer_signature(example, output)
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(CODE_FILE),  # models from code: nothing pickled
        artifacts={ARTIFACT_KEY: str(folder)},
        signature=signature,
        input_example=example,
        registered_model_name=registered_model_name,
        pip_requirements=[
            f"lightgbm=={lgb.__version__}",
            f"pandas=={pd.__version__}",
            f"numpy=={np.__version__}",
            f"mlflow=={mlflow.__version__}",
        ],
        code_paths=None,
    )
