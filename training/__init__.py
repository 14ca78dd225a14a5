"""Training: time-split panel, LightGBM + calibration, baselines, metrics, fairness, MLflow
tracking and registry, the promotion gate, and batch prediction."""

from training.data import TrainingError
from training.predict import predict
from training.registry import (
    CHAMPION,
    RegistryError,
    load_risk_model,
    promote,
    rollback,
    training_sample,
)
from training.train import TrainResult, train, train_on_panel

__all__ = [
    "CHAMPION",
    "RegistryError",
    "TrainResult",
    "TrainingError",
    "load_risk_model",
    "predict",
    "promote",
    "rollback",
    "train",
    "train_on_panel",
    "training_sample",
]
