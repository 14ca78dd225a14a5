"""The registry's write side: the promotion gates, promote and roll back.

A trained model is registered as a new version by `training.run_log`; it scores the lists only
once `promote` makes it the `champion` (if it passes the gates, or forced with a recorded
reason). Earlier champions stay registered, so rolling back is promoting an earlier version
again. Reading versions (loading one, what its run kept) is `models.registry`.
"""

from __future__ import annotations

import getpass
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

from config.settings import Settings
from models.registry import (
    CHAMPION,
    RegistryError,
    current_champion,
    evaluation,
    evaluation_rows,
    latest_version,
    load_risk_model,
    resolve_version,
    use_tracking,
)
from models.risk_model import RiskModel


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
    from training.fairness import fairness_table, flagged_groups  # scikit-learn, when needed
    from training.metrics import evaluate, list_flags

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
    client = use_tracking(settings)
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
        mv = use_tracking(settings).get_model_version(settings.mlflow.registered_model, champion)
        version = mv.tags.get("previous_champion") or None
        if not version:
            raise RegistryError(
                f"champion version {champion} records no previous champion; name one with --version"
            )
    return promote(settings, version, force=True, reason=reason)
