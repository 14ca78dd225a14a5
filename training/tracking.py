"""The experiment a training run is logged in (the write side of tracking).

Where MLflow is (`use_tracking`) is the registry's read side, in `models.registry`.
"""

from __future__ import annotations

import mlflow

from config.settings import Settings
from models.registry import is_local, use_tracking

# MLflow 3's UI opens an experiment on its kind: "custom_model_development" shows the training
# runs (GenAI's "Traces" overview otherwise). The value is the UI's own (mlflow/server/js,
# ExperimentKind.CUSTOM_MODEL_DEVELOPMENT).
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": (
        "casefinder training runs: each run trains, evaluates and registers one version of the "
        "risk model. Key metrics: test_auroc, test_auprc, test_brier, test_ppv_list, "
        "test_calibration_slope and the baselines' baseline_*_auroc (docs/training.md)."
    ),
}


def open_stores(settings: Settings) -> None:
    """Open MLflow's tracking and registry stores for `settings` (MLflow keeps each open, one per
    URI), making the local store when there is none, as logging a run would."""
    client = use_tracking(settings)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


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
        experiment_id = client.create_experiment(
            name, artifact_location=location, tags=EXPERIMENT_TAGS
        )
    else:
        experiment_id = experiment.experiment_id
        for key, value in EXPERIMENT_TAGS.items():
            if experiment.tags.get(key) != value:
                client.set_experiment_tag(experiment_id, key, value)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
