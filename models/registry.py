"""The registry's read side: where MLflow is, which versions exist, load one, read its run.

Every trained model is a version of one registered model (`settings.mlflow.registered_model`).
The `champion` alias marks the version that scores the lists. Training writes versions and moves
the alias (`training.registry`); scoring and serving only read them, through this module.

Tracking defaults to a SQLite database under CASEFINDER_HOME with artifacts in
`<home>/mlartifacts`; `MLFLOW_TRACKING_URI` (or `mlflow.tracking_uri` in settings) points it at a
real server, whose own artifact store is then used.

MLflow is imported only when needed: on a local store, scoring's reads (the alias, the version's
run, its artifacts) go straight to the SQLite file (`models.local_store`) and the model comes
from the on-disk cache, so `score` never imports MLflow once a version is cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from config.settings import Settings
from models import local_store
from models.artifacts import EVALUATION, TEST_SET, TRAINING_SAMPLE
from models.risk_model import RiskModel

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

T = TypeVar("T")

CHAMPION = "champion"
_RUN_MARKER = "run_id.txt"  # in a cached model folder: the training run it came from
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class RegistryError(Exception):
    """A model version or alias that does not exist, or a promotion that cannot be judged."""


# --- where MLflow is ------------------------------------------------------------------------


def is_local(settings: Settings) -> bool:
    """True when tracking goes to a SQLite file (by default the one under home)."""
    return local_store.store_path(settings.tracking_uri) is not None


def empty_store_template() -> Path:
    """An empty SQLite MLflow store with this MLflow version's schema, made once per machine
    (`$XDG_CACHE_HOME/casefinder`, default `~/.cache/casefinder`): MLflow creates a store by
    running all its schema migrations, many seconds; a new home copies this file instead."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "casefinder"
    template = cache / f"mlflow-{metadata.version('mlflow')}-empty.db"
    if not template.is_file():
        from mlflow.tracking import MlflowClient

        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".mlflow-", dir=cache) as tmp:
            path = Path(tmp) / "mlflow.db"
            MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
            os.replace(path, template)  # whole or not at all; a concurrent maker is the same
    return template


def _local_store(settings: Settings) -> None:
    """Create home and, the first time, its SQLite store (a copy of `empty_store_template`)."""
    settings.ensure_home()
    db = local_store.store_path(settings.tracking_uri)
    if db is None or db.exists():
        return
    tmp = db.with_name(f".{db.name}.{uuid.uuid4().hex}.tmp")
    try:
        shutil.copyfile(empty_store_template(), tmp)
        if not db.exists():
            os.replace(tmp, db)
    finally:
        tmp.unlink(missing_ok=True)


def use_tracking(settings: Settings) -> MlflowClient:
    """Set MLflow's tracking and registry URIs from `settings`; return a client on them."""
    import mlflow
    from mlflow.tracking import MlflowClient

    if is_local(settings):
        _local_store(settings)
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


def _where(settings: Settings) -> str:
    uri = settings.tracking_uri
    path = local_store.store_path(uri)
    return uri if path is None else f"SQLite {path}"


# --- versions -------------------------------------------------------------------------------


def resolve_version(settings: Settings, ref: str = CHAMPION) -> str:
    """The version number `ref` names: a number, or an alias such as 'champion'."""
    name = settings.mlflow.registered_model
    ref = str(ref).strip()
    uri = settings.tracking_uri
    if ref.isdigit() and local_store.version_run_id(uri, name, ref) is not None:
        return str(int(ref))
    if not ref.isdigit() and (found := local_store.alias_version(uri, name, ref)) is not None:
        return found
    from mlflow.exceptions import MlflowException

    client = use_tracking(settings)
    try:
        if ref.isdigit():
            return str(client.get_model_version(name, ref).version)
        return str(client.get_model_version_by_alias(name, ref).version)
    except MlflowException as exc:
        if ref == CHAMPION:
            raise RegistryError(
                f"registered model {name!r} has no champion yet (tracking store "
                f"{_where(settings)}): train a model with `casefinder train`, then run "
                "`casefinder promote`"
            ) from None
        raise RegistryError(
            f"registered model {name!r} has no version or alias {ref!r} ({_where(settings)})"
        ) from exc


def model_versions(settings: Settings) -> list[Any]:
    """Every registered version of the model (none when it is not registered)."""
    from mlflow.exceptions import MlflowException

    client = use_tracking(settings)
    try:
        return list(client.search_model_versions(f"name='{settings.mlflow.registered_model}'"))
    except MlflowException:
        return []


def latest_version(settings: Settings) -> str:
    """The highest registered version number."""
    versions = model_versions(settings)
    if not versions:
        name = settings.mlflow.registered_model
        raise RegistryError(f"registered model {name!r} has no versions: run `casefinder train`")
    return str(max(int(v.version) for v in versions))


def current_champion(settings: Settings) -> str | None:
    """The champion's version, or None."""
    try:
        return resolve_version(settings, CHAMPION)
    except RegistryError:
        return None


def list_versions(settings: Settings) -> pd.DataFrame:
    """Every registered version with its aliases, AUROC and promotion tags, newest first."""
    versions = model_versions(settings)
    aliases: dict[str, list[str]] = {}
    if versions:  # search results do not carry aliases; the registered model does
        model = use_tracking(settings).get_registered_model(settings.mlflow.registered_model)
        for alias, number in model.aliases.items():
            aliases.setdefault(str(number), []).append(alias)
    rows = [
        {
            "version": int(v.version),
            "aliases": ",".join(sorted(aliases.get(str(v.version), []))),
            "test_auroc": v.tags.get("test_auroc", ""),
            "promotion": v.tags.get("promotion", ""),
            "force_reason": v.tags.get("force_reason", ""),
            "run_id": v.run_id,
            "created": datetime.fromtimestamp(v.creation_timestamp / 1000, UTC).isoformat(
                timespec="seconds"
            ),
        }
        for v in versions
    ]
    columns = ["version", "aliases", "test_auroc", "promotion", "force_reason", "run_id", "created"]
    return pd.DataFrame(rows, columns=columns).sort_values("version", ascending=False)


# --- one version: its model and what its run kept ------------------------------------------


def load_risk_model(settings: Settings, ref: str = CHAMPION) -> tuple[RiskModel, str]:
    """The RiskModel registered as `ref` (alias or version number) and its version number, read
    from the on-disk copy of the version (`model_cache_dir`), downloaded once per version."""
    from models.flavour import load_risk_model_dir

    version = resolve_version(settings, ref)
    model = load_risk_model_dir(_cached_model(settings, version))
    model.metadata.setdefault("version", version)
    return model, version


def model_cache_dir(settings: Settings, version: str) -> Path:
    """Where the saved RiskModel of `version` is kept once downloaded: under home, by tracking
    store, registered model and version (a version's files never change)."""
    store = hashlib.sha256(settings.tracking_uri.encode()).hexdigest()[:12]
    name = settings.mlflow.registered_model
    return settings.home / "cache" / "models" / store / name / str(version)


def _cached_model(settings: Settings, version: str) -> Path:
    """The folder of `version`'s saved RiskModel, downloading it from the registry unless the
    cached copy is of the same training run (a store rebuilt with the same version numbers
    downloads again)."""
    from models.flavour import ARTIFACT_KEY, META_FILE

    folder = model_cache_dir(settings, version)
    marker = folder / _RUN_MARKER
    run_id = run_id_of(settings, version)
    if marker.is_file() and marker.read_text("utf-8") == run_id and (folder / META_FILE).is_file():
        return folder
    import mlflow
    from mlflow.exceptions import MlflowException

    use_tracking(settings)  # the download resolves `models:/` through the registry URI
    uri = f"models:/{settings.mlflow.registered_model}/{version}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=folder.parent) as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        except (MlflowException, OSError) as exc:
            raise RegistryError(f"{uri} cannot be downloaded: {exc}") from exc
        found = [p.parent for p in local.rglob(META_FILE) if p.parent.name == ARTIFACT_KEY]
        if not found:
            raise RegistryError(f"{uri} is not a casefinder risk model")
        _publish(found[0], folder, run_id)
    return folder


def _publish(staged: Path, folder: Path, run_id: str) -> None:
    """Make the saved model in `staged` (on the same file system) the cache `folder` of run
    `run_id`: marked, renamed into place whole, a copy already there moved aside first."""
    from models.flavour import META_FILE

    (staged / _RUN_MARKER).write_text(run_id, "utf-8")
    stale = folder.with_name(f".stale-{uuid.uuid4().hex}")
    if folder.exists():  # another run's copy (a store rebuilt with the same version numbers)
        os.rename(folder, stale)
    try:
        os.rename(staged, folder)
    except OSError:  # another process cached it first
        if not (folder / META_FILE).is_file():
            raise
    shutil.rmtree(stale, ignore_errors=True)


def cache_trained_model(settings: Settings, version: str, run_id: str, model: RiskModel) -> Path:
    """Put the model training just registered as `version` (run `run_id`) in the on-disk cache,
    as a download would: the first `score` after `train` need not download it."""
    from models.flavour import save_risk_model

    folder = model_cache_dir(settings, version)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".trained-", dir=folder.parent) as tmp:
        _publish(save_risk_model(model, Path(tmp) / "model"), folder, run_id)
    return folder


def run_id_of(settings: Settings, version: str) -> str:
    """The id of the training run that logged `version`."""
    name = settings.mlflow.registered_model
    found = local_store.version_run_id(settings.tracking_uri, name, str(version))
    if found is not None:
        return found
    mv = use_tracking(settings).get_model_version(settings.mlflow.registered_model, str(version))
    if not mv.run_id:
        raise RegistryError(f"model version {version} has no training run")
    return str(mv.run_id)


def _read_run_artifact(settings: Settings, version: str, path: str, read: Callable[[Path], T]) -> T:
    """Download `path` from the run that logged `version`, read it with `read`, and remove the
    download (artifacts hold copies of training data). On a local store the file is read where
    it is."""
    run_id = run_id_of(settings, version)
    folder = local_store.run_artifact_dir(settings.tracking_uri, run_id)
    if folder is not None and (folder / path).is_file():
        return read(folder / path)
    import mlflow
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="casefinder-artifact-") as target:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=path,
                dst_path=target,
                tracking_uri=settings.tracking_uri,
            )
        except (MlflowException, OSError) as exc:
            raise RegistryError(
                f"model version {version} (run {run_id}) has no {path} artifact"
            ) from exc
        return read(Path(local))


def training_sample(settings: Settings, version: str | None = None) -> pd.DataFrame:
    """A sample of the training rows (features, outcome, fairness fields; no person ids) of
    `version` (default: the champion), for drift checks."""
    version = version or resolve_version(settings, CHAMPION)
    return _read_run_artifact(settings, str(version), TRAINING_SAMPLE, pd.read_parquet)


def evaluation_rows(settings: Settings, version: str) -> pd.DataFrame:
    """The test rows `version` was evaluated on (no person ids)."""
    return _read_run_artifact(settings, str(version), TEST_SET, pd.read_parquet)


def evaluation(settings: Settings, version: str) -> dict[str, Any]:
    """The evaluation summary logged with `version` (metrics, list shares, fairness flags)."""
    return _read_run_artifact(
        settings, str(version), EVALUATION, lambda p: json.loads(p.read_text("utf-8"))
    )
