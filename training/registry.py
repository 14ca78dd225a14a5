"""The registered model: load a version, read what its run kept, promote with a gate, roll back.

Every trained model is a version of one registered model (`settings.mlflow.registered_model`).
The `champion` alias marks the version that scores the lists; earlier champions stay registered,
so rolling back is promoting an earlier version again.
"""

from __future__ import annotations

import getpass
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from config.settings import Settings
from models.risk_model import RiskModel
from training.fairness import fairness_table, flagged_groups
from training.metrics import evaluate, list_flags
from training.tracking import use_tracking

T = TypeVar("T")

CHAMPION = "champion"


class RegistryError(Exception):
    """A model version or alias that does not exist, or a promotion that cannot be judged."""


def _client(settings: Settings) -> MlflowClient:
    return use_tracking(settings)


def resolve_version(settings: Settings, ref: str = CHAMPION) -> str:
    """The version number `ref` names: a number, or an alias such as 'champion'."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    ref = str(ref).strip()
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


def _where(settings: Settings) -> str:
    uri = settings.tracking_uri
    return uri if not uri.startswith("sqlite:") else f"SQLite {uri.removeprefix('sqlite:///')}"


def load_risk_model(settings: Settings, ref: str = CHAMPION) -> tuple[RiskModel, str]:
    """The RiskModel registered as `ref` (alias or version number) and its version number."""
    version = resolve_version(settings, ref)
    uri = f"models:/{settings.mlflow.registered_model}/{version}"
    pyfunc = mlflow.pyfunc.load_model(uri)
    wrapper = pyfunc.unwrap_python_model()
    model = wrapper.model
    if not isinstance(model, RiskModel):
        raise RegistryError(f"{uri} is not a casefinder risk model")
    model.metadata.setdefault("version", version)
    return model, version


def run_id_of(settings: Settings, version: str) -> str:
    """The id of the training run that logged `version`."""
    mv = _client(settings).get_model_version(settings.mlflow.registered_model, str(version))
    if not mv.run_id:
        raise RegistryError(f"model version {version} has no training run")
    return str(mv.run_id)


def _read_run_artifact(settings: Settings, version: str, path: str, read: Callable[[Path], T]) -> T:
    """Download `path` from the run that logged `version`, read it with `read`, and remove the
    download (artifacts hold copies of training data)."""
    run_id = run_id_of(settings, version)
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
    from training.train import TRAINING_SAMPLE

    version = version or resolve_version(settings, CHAMPION)
    return _read_run_artifact(settings, str(version), TRAINING_SAMPLE, pd.read_parquet)


def evaluation_rows(settings: Settings, version: str) -> pd.DataFrame:
    """The test rows `version` was evaluated on (no person ids)."""
    from training.train import TEST_SET

    return _read_run_artifact(settings, str(version), TEST_SET, pd.read_parquet)


def evaluation(settings: Settings, version: str) -> dict:
    """The evaluation summary logged with `version` (metrics, list shares, fairness flags)."""
    from training.train import EVALUATION

    return _read_run_artifact(
        settings, str(version), EVALUATION, lambda p: json.loads(p.read_text("utf-8"))
    )


@dataclass
class Gate:
    """One promotion check."""

    name: str
    passed: bool
    detail: str


@dataclass
class Promotion:
    """The outcome of `promote`."""

    version: str
    promoted: bool
    previous: str | None
    gates: list[Gate] = field(default_factory=list)
    forced: bool = False
    reason: str = ""

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]


def compare_models(
    candidate: RiskModel,
    champion: RiskModel | None,
    test: pd.DataFrame,
    share: dict[str, float],
    settings: Settings,
    champion_version: str | None = None,
) -> list[Gate]:
    """The promotion gates for `candidate` against `champion` on the same test rows."""
    cfg = settings.training
    y = test["outcome"].astype(int).to_numpy()
    nbhd = test["neighbourhood"].astype(str).to_numpy()
    p_cand = candidate.predict_proba(test)
    m_cand = evaluate(y, p_cand, cfg.top_fractions, nbhd, share)
    slope = m_cand["calibration_slope"]
    gates = [
        Gate(
            "calibration slope",
            math.isfinite(slope) and cfg.gate_slope_min <= slope <= cfg.gate_slope_max,
            f"slope {slope:.3f}, allowed {cfg.gate_slope_min}-{cfg.gate_slope_max}",
        )
    ]
    if champion is None:
        gates.append(Gate("AUROC vs champion", True, "no champion yet"))
        gates.append(Gate("fairness flags", True, "no champion yet"))
        return gates
    missing = [c for c in champion.feature_names if c not in test.columns]
    if missing:
        raise RegistryError(
            f"cannot compare with the champion on the candidate's test rows: they lack its "
            f"features {', '.join(missing[:5])}; use --force --reason"
        )
    p_champ = champion.predict_proba(test)
    m_champ = evaluate(y, p_champ, cfg.top_fractions, nbhd, share)
    drop = m_champ["auroc"] - m_cand["auroc"]
    gates.append(
        Gate(
            "AUROC vs champion",
            drop <= cfg.gate_auroc_tolerance,
            f"candidate {m_cand['auroc']:.4f}, champion v{champion_version or '?'} "
            f"{m_champ['auroc']:.4f} on the same {len(y)} test rows "
            f"(tolerance {cfg.gate_auroc_tolerance})",
        )
    )
    flags_cand = flagged_groups(
        fairness_table(test, y, p_cand, list_flags(p_cand, nbhd, share), cfg)
    )
    flags_champ = flagged_groups(
        fairness_table(test, y, p_champ, list_flags(p_champ, nbhd, share), cfg)
    )
    new = sorted(flags_cand - flags_champ)
    gates.append(
        Gate(
            "fairness flags",
            not new,
            f"new flagged groups: {', '.join(new)}" if new else "no new flagged group",
        )
    )
    return gates


def check_gates(settings: Settings, candidate: str, champion: str | None) -> list[Gate]:
    """The promotion gates for registered `candidate` against `champion`, on the candidate's
    logged test rows and list shares."""
    cand_model, _ = load_risk_model(settings, candidate)
    champ_model = load_risk_model(settings, champion)[0] if champion else None
    share = evaluation(settings, candidate)["list_share"]
    rows = evaluation_rows(settings, candidate)
    return compare_models(cand_model, champ_model, rows, share, settings, champion)


def _versions(settings: Settings) -> tuple[MlflowClient, str, list]:
    """A client, the registered model's name and its versions (none when it is not registered)."""
    client = _client(settings)
    name = settings.mlflow.registered_model
    try:
        return client, name, client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return client, name, []


def latest_version(settings: Settings) -> str:
    """The highest registered version number."""
    _, name, versions = _versions(settings)
    if not versions:
        raise RegistryError(f"registered model {name!r} has no versions: run `casefinder train`")
    return str(max(int(v.version) for v in versions))


def current_champion(settings: Settings) -> str | None:
    """The champion's version, or None."""
    try:
        return resolve_version(settings, CHAMPION)
    except RegistryError:
        return None


def promote(
    settings: Settings,
    version: str | None = None,
    force: bool = False,
    reason: str | None = None,
) -> Promotion:
    """Make `version` (default: the latest) the champion if it passes the gates, or
    unconditionally with `force` (a `reason` is then required and recorded on the version)."""
    if force and not (reason and reason.strip()):
        raise RegistryError("--force needs --reason: say why the gate is overridden")
    name = settings.mlflow.registered_model
    version = resolve_version(settings, version) if version else latest_version(settings)
    champion = current_champion(settings)
    if champion == version:
        return Promotion(version, False, champion, [Gate("already champion", False, "")])
    gates = [] if force else check_gates(settings, version, champion)
    result = Promotion(version, force or all(g.passed for g in gates), champion, gates, force)
    result.reason = reason or ""
    if not result.promoted:
        return result
    client = _client(settings)
    client.set_registered_model_alias(name, CHAMPION, version)
    tags = {
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promoted_by": getpass.getuser(),
        "previous_champion": champion or "",
        "promotion": "forced" if force else "gate passed",
        "gates": "; ".join(
            f"{g.name}: {'pass' if g.passed else 'FAIL'} ({g.detail})" for g in gates
        ),
    }
    if force:
        tags["force_reason"] = reason or ""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return result


def rollback(settings: Settings, version: str | None = None, reason: str = "rollback") -> Promotion:
    """Make `version` (default: the champion's recorded predecessor) champion again, forced."""
    if version is None:
        champion = current_champion(settings)
        if champion is None:
            raise RegistryError("there is no champion to roll back from")
        mv = _client(settings).get_model_version(settings.mlflow.registered_model, champion)
        version = mv.tags.get("previous_champion") or None
        if not version:
            raise RegistryError(
                f"champion version {champion} records no previous champion; name one with --version"
            )
    return promote(settings, version, force=True, reason=reason)


def list_versions(settings: Settings) -> pd.DataFrame:
    """Every registered version with its aliases, AUROC and promotion tags, newest first."""
    client, name, versions = _versions(settings)
    aliases: dict[str, list[str]] = {}
    if versions:  # search results do not carry aliases; the registered model does
        for alias, number in client.get_registered_model(name).aliases.items():
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
