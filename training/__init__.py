"""Training: time-split panel, LightGBM + calibration, baselines, metrics, fairness, the MLflow
run and its registered version, the promotion gate, and batch prediction.

Reading the registry (loading a version, what its run kept) is `models.registry`.
"""

from training.data import TrainingError
from training.predict import predict
from training.registry import promote, rollback
from training.train import TrainResult, train, train_on_panel

__all__ = [
    "TrainResult",
    "TrainingError",
    "predict",
    "promote",
    "rollback",
    "train",
    "train_on_panel",
]
