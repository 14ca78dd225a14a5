"""What one training run produced, as the run's description and its MLflow logging read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.risk_model import RiskModel
from training.data import Split

if TYPE_CHECKING:  # the evaluation imports scikit-learn; `train` loads it on a thread
    from concurrent.futures import Future

    import pandas as pd

    from training.evaluation import Evaluation


@dataclass
class RunRecord:
    """What one training run logs: the model, the rows it came from and its evaluation."""

    model: RiskModel
    split: Split
    evaluation: Evaluation
    feature_names: list[str]
    extract_info: dict[str, Any]
    params: dict[str, Any]
    counts: dict[str, int]
    trained_at: str
    started: float | None = None  # epoch seconds when training began (the MLflow run's start)
    # The global SHAP importance being computed on a thread (`training.importance`); None:
    # logging the run computes it.
    shap_importance: Future[pd.Series] | None = None
