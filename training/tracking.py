"""Point MLflow at the configured tracking store and experiment.

Default: a SQLite database under CASEFINDER_HOME with artifacts in `<home>/mlartifacts`;
`MLFLOW_TRACKING_URI` (or `mlflow.tracking_uri` in settings) points it at a real server, whose own
artifact store is then used.
"""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from casefinder.settings import Settings


def is_local(settings: Settings) -> bool:
    """True when tracking goes to the default SQLite file under home."""
    return settings.tracking_uri.startswith("sqlite:")


def use_tracking(settings: Settings) -> MlflowClient:
    """Set MLflow's tracking and registry URIs from `settings`; return a client on them."""
    if is_local(settings):
        settings.ensure_home()
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


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
