"""Per-person explanations of the risk score: the one implementation used by the monthly lists,
the service and the CLI.

Contributions are exact TreeSHAP values of the booster in log-odds (LightGBM's own
`pred_contrib=True`, which agrees with shap's TreeExplainer and is the fastest exact method
measured in benchmarks/bench_explain.py). For every row, base value + contributions = the booster's
margin.

Probability scale (see docs/explanations.md): the base probability is the calibrator applied to
the base margin; the difference between the served probability and the base probability is shared
across features in proportion to their log-odds contributions. So the probability-scale sizes keep
the sign and the ranking of the log-odds ones, and base probability + their sum = the served
probability, exactly. The same rule shares a month-on-month or what-if change in probability
across the features' changes in contribution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.reasons import (
    FeatureDefs,
    change_sentence,
    check_what_if_value,
    clean_value,
    feature_map,
    phrase,
)
from models.risk_model import RiskModel

PERSON_ID = "person_id"
# Below this total log-odds change the secant (Δp / Δmargin) is numerically unstable; use the
# calibrator's slope at the starting point instead (the secant's limit).
_TINY_LOG_ODDS = 1e-9
# Batches smaller than this are explained on one thread (measured in benchmarks/bench_explain.py:
# for one row, LightGBM's thread start-up costs several times the work itself).
_SMALL_BATCH = 256


@dataclass(frozen=True)
class Reason:
    """One feature's part in a person's score."""

    feature: str
    domain: str
    sentence: str  # Feature.phrase(value): the none_sentence when nothing is recorded
    value: float | None
    log_odds: float  # TreeSHAP contribution to the margin
    probability_change: float  # its share of (served − base probability); 0.031 = 3.1 points
    absent: bool  # the value means "nothing recorded"; the sentence then claims no event


@dataclass(frozen=True)
class DomainGroup:
    """The shown reasons of one domain, with the domain's total over all its features."""

    domain: str
    log_odds: float
    probability_change: float
    raising: list[Reason]
    lowering: list[Reason]


@dataclass(frozen=True)
class Explanation:
    """Why one person has their score: base + raising + lowering + other = probability."""

    person_id: Any
    probability: float  # served (calibrated)
    band: str
    base_probability: float  # calibrator applied to the base margin
    margin: float  # booster log-odds
    base_margin: float  # TreeSHAP expected value
    raising: list[Reason]  # largest positive contributions first
    lowering: list[Reason]  # largest negative contributions first
    other_log_odds: float  # everything not shown, so the parts add up
    other_probability_change: float
    domains: list[DomainGroup] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class Movement:
    """How one feature's contribution moved between two scorings of a person."""

    feature: str
    domain: str
    sentence: str  # e.g. "new: lives alone", "... rose from 0 to 2"
    before: float | None
    after: float | None
    log_odds_change: float
    probability_change: float


@dataclass(frozen=True)
class PersonChanges:
    """What changed for one person between two scorings (e.g. last month and this month).

    status: "both" (scored twice), "new" (only in the current rows), "gone" (only in previous).
    movements + other = the change in score, on both scales.
    """

    person_id: Any
    status: str
    previous_probability: float | None
    probability: float | None
    previous_band: str | None
    band: str | None
    probability_change: float | None
    margin_change: float | None
    movements: list[Movement]
    other_log_odds_change: float
    other_probability_change: float

    @classmethod
    def new(cls, person_id: Any, probability: float, band: str) -> PersonChanges:
        """A person scored now but not in the previous scoring: nothing to compare."""
        return cls(
            person_id=person_id,
            status="new",
            previous_probability=None,
            probability=float(probability),
            previous_band=None,
            band=str(band),
            probability_change=None,
            margin_change=None,
            movements=[],
            other_log_odds_change=0.0,
            other_probability_change=0.0,
        )

    @classmethod
    def gone(cls, person_id: Any, previous_probability: float, previous_band: str) -> PersonChanges:
        """A person in the previous scoring but not scored now."""
        return cls(
            person_id=person_id,
            status="gone",
            previous_probability=float(previous_probability),
            probability=None,
            previous_band=str(previous_band),
            band=None,
            probability_change=None,
            margin_change=None,
            movements=[],
            other_log_odds_change=0.0,
            other_probability_change=0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class WhatIf:
    """A person's score and explanation before and after changing some adjustable features."""

    changed: dict[str, dict[str, float | None]]  # feature -> {"before": x, "after": y}
    before: Explanation
    after: Explanation
    probability_change: float
    margin_change: float
    movements: list[Movement]  # the changed features' own moves
    # Knock-on moves of unchanged features (interactions in the trees); with the movements,
    # these add up to the change in score.
    other_log_odds_change: float
    other_probability_change: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict."""
        return asdict(self)


# --- contributions ---------------------------------------------------------------------------


def contributions(
    model: RiskModel, rows: pd.DataFrame, num_threads: int | None = None
) -> tuple[float, np.ndarray]:
    """Exact TreeSHAP of the booster in log-odds: (base_value, contributions [n, features]).

    Columns follow `model.feature_names`; base_value + contributions.sum(1) = model.margin(rows).
    `num_threads`: None picks one thread for small batches (starting threads costs more than
    it saves for a few rows) and all cores otherwise; 0 means all cores.
    """
    return _contributions(model, model.frame(rows).to_numpy(dtype=np.float64), num_threads)


def _threads(n: int, num_threads: int | None) -> int:
    if num_threads is not None:
        return num_threads
    return 1 if n < _SMALL_BATCH else 0


def _contributions(
    model: RiskModel, x: np.ndarray, num_threads: int | None = None
) -> tuple[float, np.ndarray]:
    num_threads = _threads(len(x), num_threads)
    if len(x) == 0:
        x_base = np.full((1, len(model.feature_names)), np.nan)
        base = model.booster.predict(x_base, pred_contrib=True, num_threads=num_threads)[0, -1]
        return float(base), np.empty((0, len(model.feature_names)))
    out = model.booster.predict(x, pred_contrib=True, num_threads=num_threads)
    if isinstance(out, list) or out.ndim != 2 or out.shape[1] != x.shape[1] + 1:
        raise ValueError("explanations need a binary LightGBM booster (one output)")
    return float(out[0, -1]), np.ascontiguousarray(out[:, :-1])


def share_probability(
    model: RiskModel, delta_log_odds: np.ndarray, p_start: np.ndarray, p_end: np.ndarray
) -> np.ndarray:
    """Share each row's probability change (p_end − p_start) across features in proportion to
    their log-odds changes; the shares of a row add up to its probability change exactly."""
    delta_log_odds = np.atleast_2d(delta_log_odds)
    total = delta_log_odds.sum(axis=1)
    p_start = np.asarray(p_start, dtype=float)
    local = model.calibrator.slope * p_start * (1.0 - p_start)  # limit of the secant
    stable = np.abs(total) > _TINY_LOG_ODDS
    rate = np.where(stable, (np.asarray(p_end) - p_start) / np.where(stable, total, 1.0), local)
    return delta_log_odds * rate[:, None]


# --- explanations ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _person_ids(rows: pd.DataFrame) -> list[Any]:
    if PERSON_ID in rows.columns:
        return [_plain(v) for v in rows[PERSON_ID].tolist()]
    return [None] * len(rows)


def explain(
    model: RiskModel, rows: pd.DataFrame, top_n: int = 5, features: FeatureDefs = None
) -> list[Explanation]:
    """Explain each row: served probability, band, base, and the `top_n` factors raising and
    lowering risk (plain sentences from the feature definitions), grouped by domain.

    `features`: feature definitions (mapping or iterable of `Feature`); default the registry.
    """
    if top_n < 0:
        raise ValueError(f"top_n must be ≥ 0, got {top_n}")
    defs = feature_map(features, model.feature_names)
    names = model.feature_names
    frame = model.frame(rows)
    values = frame.to_numpy(dtype=np.float64)
    base, contrib = _contributions(model, values)
    threads = _threads(len(values), None)
    margins = (
        model.booster.predict(values, raw_score=True, num_threads=threads)
        if len(values)
        else np.empty(0)
    )
    probs = model.calibrator.transform(margins)
    bands = model.band(probs).tolist()
    base_p = float(model.calibrator.transform(np.array([base]))[0])
    points = share_probability(model, contrib, np.full(len(values), base_p), probs)

    feats = [defs[n] for n in names]
    domain_names = list(dict.fromkeys(f.domain for f in feats))
    onehot = np.array([[f.domain == dn for dn in domain_names] for f in feats], dtype=float)
    domain_lo, domain_p = (contrib @ onehot).tolist(), (points @ onehot).tolist()
    domain_index = {dn: k for k, dn in enumerate(domain_names)}
    total_lo, total_p = contrib.sum(axis=1).tolist(), points.sum(axis=1).tolist()

    # The top_n most negative and most positive columns of each row, gathered once.
    order = np.argsort(contrib, axis=1, kind="stable")
    picked = np.concatenate([order[:, ::-1][:, :top_n], order[:, :top_n]], axis=1)
    pick_lo = np.take_along_axis(contrib, picked, axis=1).tolist()
    pick_p = np.take_along_axis(points, picked, axis=1).tolist()
    pick_v = np.take_along_axis(values, picked, axis=1).tolist()
    words: dict[tuple[int, float | None], tuple[str, bool]] = {}  # phrases repeat a lot

    out: list[Explanation] = []
    for r, person in enumerate(_person_ids(rows)):
        raising: list[Reason] = []
        lowering: list[Reason] = []
        groups: dict[str, tuple[list[Reason], list[Reason]]] = {}
        shown_lo = shown_p = 0.0
        for k, j in enumerate(picked[r].tolist()):
            lo = pick_lo[r][k]
            up = k < top_n
            if (up and lo <= 0) or (not up and lo >= 0):
                continue
            feat, value = feats[j], clean_value(pick_v[r][k])
            key = (j, value)
            if key not in words:
                words[key] = (phrase(feat, value), feat.is_none(value))
            sentence, absent = words[key]
            reason = Reason(feat.name, feat.domain, sentence, value, lo, pick_p[r][k], absent)
            (raising if up else lowering).append(reason)
            groups.setdefault(feat.domain, ([], []))[0 if up else 1].append(reason)
            shown_lo += lo
            shown_p += pick_p[r][k]
        domain_groups = [
            DomainGroup(dn, domain_lo[r][domain_index[dn]], domain_p[r][domain_index[dn]], up, down)
            for dn, (up, down) in groups.items()
        ]
        domain_groups.sort(key=lambda g: -abs(g.probability_change))
        out.append(
            Explanation(
                person_id=person,
                probability=float(probs[r]),
                band=str(bands[r]),
                base_probability=base_p,
                margin=float(margins[r]),
                base_margin=base,
                raising=raising,
                lowering=lowering,
                other_log_odds=total_lo[r] - shown_lo,
                other_probability_change=total_p[r] - shown_p,
                domains=domain_groups,
            )
        )
    return out


# --- what changed ----------------------------------------------------------------------------


def _movements(
    model: RiskModel,
    defs: dict[str, Any],
    before: np.ndarray,
    after: np.ndarray,
    delta_lo: np.ndarray,
    delta_p: np.ndarray,
    top_n: int | None,
) -> tuple[list[Movement], float, float]:
    """The features whose contributions moved most (non-zero moves only), and the rest."""
    names = model.feature_names
    order = np.argsort(-np.abs(delta_lo), kind="stable")
    if top_n is not None:
        order = order[:top_n]
    picked = [j for j in order if delta_lo[j] != 0.0]
    moves = [
        Movement(
            feature=names[j],
            domain=defs[names[j]].domain,
            sentence=change_sentence(defs[names[j]], before[j], after[j]),
            before=clean_value(before[j]),
            after=clean_value(after[j]),
            log_odds_change=float(delta_lo[j]),
            probability_change=float(delta_p[j]),
        )
        for j in picked
    ]
    other_lo = float(delta_lo.sum() - delta_lo[picked].sum())
    other_p = float(delta_p.sum() - delta_p[picked].sum())
    return moves, other_lo, other_p


def _keys(rows: pd.DataFrame, label: str) -> list[Any]:
    if PERSON_ID in rows.columns:
        keys = _person_ids(rows)
    else:
        keys = [_plain(v) for v in rows.index.tolist()]
    seen: set[Any] = set()
    dupes = {k for k in keys if k in seen or seen.add(k)}
    if dupes:
        raise ValueError(f"{label} rows repeat {len(dupes)} person id(s), e.g. {sorted(dupes)[0]}")
    return keys


def changes(
    model: RiskModel,
    previous_rows: pd.DataFrame,
    current_rows: pd.DataFrame,
    top_n: int = 5,
    features: FeatureDefs = None,
) -> list[PersonChanges]:
    """What changed per person between two scorings, matched on `person_id` (else the index).

    For people in both: the `top_n` features whose contributions moved most, in words, with
    log-odds and probability changes that (with `other_*`) add up to the change in score. People
    in only one of the two are returned with status "new" or "gone", never dropped.
    """
    defs = feature_map(features, model.feature_names)
    prev_keys, cur_keys = _keys(previous_rows, "previous"), _keys(current_rows, "current")
    prev_pos = {k: i for i, k in enumerate(prev_keys)}
    both = [(prev_pos[k], i) for i, k in enumerate(cur_keys) if k in prev_pos]
    pi = np.array([p for p, _ in both], dtype=int)
    ci = np.array([c for _, c in both], dtype=int)

    prev_x = model.frame(previous_rows).to_numpy(dtype=np.float64)
    cur_x = model.frame(current_rows).to_numpy(dtype=np.float64)
    _, prev_c = contributions(model, previous_rows.iloc[pi])
    _, cur_c = contributions(model, current_rows.iloc[ci])
    prev_m, cur_m = model.margin(previous_rows), model.margin(current_rows)
    prev_p, cur_p = model.calibrator.transform(prev_m), model.calibrator.transform(cur_m)
    prev_b, cur_b = model.band(prev_p), model.band(cur_p)
    delta_lo = cur_c - prev_c
    delta_p = share_probability(model, delta_lo, prev_p[pi], cur_p[ci])

    out: list[PersonChanges] = []
    for k, (p, c) in enumerate(both):
        moves, other_lo, other_p = _movements(
            model, defs, prev_x[p], cur_x[c], delta_lo[k], delta_p[k], top_n
        )
        out.append(
            PersonChanges(
                person_id=cur_keys[c],
                status="both",
                previous_probability=float(prev_p[p]),
                probability=float(cur_p[c]),
                previous_band=str(prev_b[p]),
                band=str(cur_b[c]),
                probability_change=float(cur_p[c] - prev_p[p]),
                margin_change=float(cur_m[c] - prev_m[p]),
                movements=moves,
                other_log_odds_change=other_lo,
                other_probability_change=other_p,
            )
        )
    matched_cur = set(ci.tolist())
    matched_prev = set(pi.tolist())
    for c, key in enumerate(cur_keys):
        if c not in matched_cur:
            out.append(PersonChanges.new(key, cur_p[c], cur_b[c]))
    for p, key in enumerate(prev_keys):
        if p not in matched_prev:
            out.append(PersonChanges.gone(key, prev_p[p], prev_b[p]))
    return out


# --- what if ---------------------------------------------------------------------------------


def _one_row(row: pd.DataFrame | pd.Series | Mapping[str, Any]) -> pd.DataFrame:
    if isinstance(row, pd.DataFrame):
        if len(row) != 1:
            raise ValueError(f"what_if explains one person; got {len(row)} rows")
        return row.reset_index(drop=True)
    if isinstance(row, pd.Series):
        return row.to_frame().T.reset_index(drop=True)
    return pd.DataFrame([dict(row)])


def what_if(
    model: RiskModel,
    row: pd.DataFrame | pd.Series | Mapping[str, Any],
    changes: Mapping[str, float | None],
    top_n: int = 5,
    features: FeatureDefs = None,
) -> WhatIf:
    """Recompute one person's score and explanation with some adjustable features changed.

    Only model inputs whose definition has `adjustable=True` may change; values must fit the
    feature's kind (counts whole and ≥ 0, flags 0/1, codes one of the labels, None for a
    days-since feature meaning "never"). Raise naming every offending feature.
    """
    defs = feature_map(features, model.feature_names)
    if not changes:
        raise ValueError("what_if needs at least one feature to change")
    problems, clean = [], {}
    for name, value in changes.items():
        if name not in defs:
            problems.append(f"{name!r} is not a feature of this model")
        elif not defs[name].adjustable:
            problems.append(f"{name!r} cannot be changed in a what-if (not adjustable)")
        else:
            try:
                clean[name] = check_what_if_value(defs[name], value)
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))

    before_row = _one_row(row)
    after_row = before_row.copy()
    for name, value in clean.items():
        after_row[name] = float(value)
    before, after = explain(model, pd.concat([before_row, after_row]), top_n, defs)
    _, contrib = contributions(model, pd.concat([before_row, after_row]))
    delta_lo = contrib[1] - contrib[0]
    delta_p = share_probability(
        model, delta_lo, np.array([before.probability]), np.array([after.probability])
    )[0]
    before_x = model.frame(before_row).to_numpy(dtype=np.float64)[0]
    after_x = model.frame(after_row).to_numpy(dtype=np.float64)[0]
    changed_idx = [model.feature_names.index(n) for n in clean]
    moves, _, _ = _movements(model, defs, before_x, after_x, delta_lo, delta_p, None)
    moves = [m for m in moves if m.feature in clean]
    other_lo = float(delta_lo.sum() - delta_lo[changed_idx].sum())
    other_p = float(delta_p.sum() - delta_p[changed_idx].sum())
    changed = {
        n: {"before": clean_value(before_x[model.feature_names.index(n)]), "after": clean_value(v)}
        for n, v in clean.items()
    }
    return WhatIf(
        changed=changed,
        before=before,
        after=after,
        probability_change=after.probability - before.probability,
        margin_change=after.margin - before.margin,
        movements=moves,
        other_log_odds_change=other_lo,
        other_probability_change=other_p,
    )
