"""The experiment a training run is logged in (the write side of tracking).

Where MLflow is (`use_tracking`) is the registry's read side, in `models.registry`.
"""

from __future__ import annotations

import mlflow

from config.settings import Settings
from models.registry import is_local, use_tracking


def use_experiment(settings: Settings, name: str | None = None) -> str:
    """Make `name` (default `settings.mlflow.experiment`) the active experiment, creating it
    (with artifacts under home when tracking locally); return its id."""
    client = use_tracking(settings)
    name = name or settings.mlflow.experiment
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        location = None
        if is_local(settings):
            location = (settings.home / "mlartifacts").resolve().as_uri()
        experiment_id = client.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
