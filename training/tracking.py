"""Point MLflow at the configured tracking store and experiment.

Default: a SQLite database under CASEFINDER_HOME with artifacts in `<home>/mlartifacts`;
`MLFLOW_TRACKING_URI` (or `mlflow.tracking_uri` in settings) points it at a real server, whose own
artifact store is then used.
"""

from __future__ import annotations

import os

import mlflow
from mlflow.tracking import MlflowClient

from config.settings import Settings

_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def is_local(settings: Settings) -> bool:
    """True when tracking goes to the default SQLite file under home."""
    return settings.tracking_uri.startswith("sqlite:")


def use_tracking(settings: Settings) -> MlflowClient:
    """Set MLflow's tracking and registry URIs from `settings`; return a client on them."""
    if is_local(settings):
        settings.ensure_home()
    uri = settings.tracking_uri
    # mlflow.set_*_uri also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into the environment,
    # which `Settings.tracking_uri` reads first: put the user's own values back, so one command's
    # store never leaks into the next settings object.
    saved = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


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
