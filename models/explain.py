"""Per-person explanations of the risk score: the one implementation used by the monthly lists,
the service and the CLI.

**Reference.** An explanation starts from the *reference probability*: the mean served
probability of everyone scored at that index date (a run stores it in its meta as
`reference_probability`), and its parts add up exactly from there to the person's served
probability.

**Method** (docs/explanations.md). TreeSHAP of the booster in log-odds (LightGBM's
`pred_contrib=True`, exact and the fastest measured in benchmarks/bench_explain.py) gives, for
every person x, phi_j(x) with base + sum_j phi_j(x) = margin(x). The probability-scale part of
feature j is

    s_j(x) = sum_b w_b * r(x, b) * (phi_j(x) - phi_j(b)),
    r(x, b) = (p(x) - p(b)) / (margin(x) - margin(b))   (the calibrator's secant, > 0),

over a fixed, seeded background sample b of the scored population with weights w (sum 1) tilted
so that sum_b w_b p(b) is the population's mean served probability exactly. So, for every person:
sum_j s_j(x) = p(x) - reference (exact); a feature whose TreeSHAP value is the same for everyone
gets 0; s_j(x) is a positively weighted average of how much more feature j adds for x than for
each background person, so it is positive when it adds more for x than for all of them and
negative when less. The same secant shares a month-on-month or what-if change in probability
across the features' changes in contribution.

**Reasons.** Parts are summed by concept (`Feature.concept`: e.g. the 3-, 6-, 12- and 36-month
emergency admission counts and the days since the last one); a reason is a concept, worded by its
most telling feature. At most `top_n` each way, none under `MIN_POINTS`.
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
    format_points,
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
# The background sample of the scored population (fixed seed: the same run, the same reasons).
REFERENCE_SAMPLE = 1000
REFERENCE_SEED = 20261
# Reasons smaller than this (half a percentage point) are not shown; they count in "other".
MIN_POINTS = 0.005
# A feature value "raises" (or "lowers") risk on the population's curve when the population's
# mean TreeSHAP at that value is at least this far (log-odds) above (below) its overall mean.
CURVE_TOLERANCE = 0.02
_CURVE_GROUPS = 20
_CHUNK = 2048
USUALLY_RAISES = "usually raises risk; here it counts for less alongside their other records"
USUALLY_LOWERS = "usually lowers risk; here it counts for more alongside their other records"


@dataclass(frozen=True)
class Reason:
    """One concept's part in a person's score, worded by its most telling feature."""

    concept: str
    feature: str  # the feature that words it
    domain: str
    sentence: str  # Feature.phrase(value) (+ a brief of another feature of the concept)
    value: float | None  # the wording feature's value
    log_odds: float  # the concept's TreeSHAP sum (log-odds, against the model's base)
    probability_change: float  # its part of (served − reference probability); 0.031 = 3.1 points
    absent: bool  # the value means "nothing recorded"; the sentence then claims no event
    # Set when the value goes the other way on the population's curve (USUALLY_RAISES/LOWERS).
    note: str | None = None


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
    """Why one person has their score: reference + raising + lowering + other = probability."""

    person_id: Any
    probability: float  # served (calibrated)
    band: str
    reference_probability: float  # mean served probability of the reference population
    reference: str  # who that is, in words
    margin: float  # booster log-odds
    base_margin: float  # TreeSHAP expected value (log-odds)
    raising: list[Reason]  # largest positive parts first
    lowering: list[Reason]  # largest negative parts first
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
    sentence: str  # e.g. "new: lives alone", "falls recorded in the last 12 months: 0 → 2"
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
    """A person's score and explanation before and after changing some root inputs."""

    changed: dict[str, dict[str, float | None]]  # feature -> {"before": x, "after": y}
    before: Explanation
    after: Explanation
    probability_change: float
    margin_change: float
    movements: list[Movement]  # the changed features' own moves (roots and re-derived ones)
    # Knock-on moves of unchanged features (interactions in the trees); with the movements,
    # these add up to the change in score.
    other_log_odds_change: float
    other_probability_change: float
    derived: list[str] = field(default_factory=list)  # dependents re-derived from the roots
    warnings: list[str] = field(default_factory=list)  # e.g. the input is part of the outcome

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
    return _contributions(model, model.matrix(rows), num_threads)


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


def _margins(model: RiskModel, x: np.ndarray) -> np.ndarray:
    if not len(x):
        return np.empty(0)
    return model.booster.predict(x, raw_score=True, num_threads=_threads(len(x), None))


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


# --- the reference ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """A feature's population curve: mean TreeSHAP (log-odds, centred on the population mean)
    by value, in up to 20 groups of the background; missing values have their own mean."""

    upper: np.ndarray  # each group's largest value, ascending
    means: np.ndarray
    missing: float

    def at(self, value: float | None) -> float:
        """The curve at `value` (0 where the background never had such a value)."""
        if value is None or np.isnan(value):
            return self.missing
        if not len(self.upper):
            return 0.0
        k = min(int(np.searchsorted(self.upper, value, side="left")), len(self.upper) - 1)
        return float(self.means[k])


@dataclass(frozen=True)
class Reference:
    """What explanations are measured against: the mean served probability of a population
    (`probability`) and a weighted background sample of it."""

    probability: float
    description: str
    population: int  # people in the population
    margins: np.ndarray  # background: booster margins [B]
    probabilities: np.ndarray  # served probabilities [B]
    weights: np.ndarray  # [B], sum 1, weights @ probabilities == probability
    contributions: np.ndarray  # TreeSHAP [B, features]
    curves: tuple[Curve, ...]  # one per model input


def _tilt(p: np.ndarray, target: float) -> np.ndarray:
    """Weights (sum 1) closest to equal (exponential tilting) with weights @ p == target.

    The tilted mean rises with the tilt (its derivative is the tilted variance), so bisection
    finds it: ~100 halvings to the last bit, cheaper than importing scipy.optimize (0.4 s of
    every scoring process)."""
    n = len(p)
    equal = np.full(n, 1.0 / n)
    if n == 0 or abs(equal @ p - target) < 1e-15:
        return equal
    if not p.min() < target < p.max():
        raise ValueError("the reference probability is outside the background's probabilities")
    centred = p - p.mean()

    def weights(theta: float) -> np.ndarray:
        z = theta * centred
        w = np.exp(z - z.max())
        return w / w.sum()

    hi = 1.0
    while weights(hi) @ p < target or weights(-hi) @ p > target:
        hi *= 2.0
    low, high = -hi, hi
    while True:
        mid = 0.5 * (low + high)
        if mid in (low, high):  # adjacent floats: nothing left to halve
            break
        gap = weights(mid) @ p - target
        if gap == 0.0:
            break
        low, high = (mid, high) if gap < 0 else (low, mid)
    return weights(mid)


def _curves(values: np.ndarray, contrib: np.ndarray, weights: np.ndarray) -> tuple[Curve, ...]:
    out = []
    centred = contrib - weights @ contrib
    for j in range(values.shape[1]):
        v, c = values[:, j], centred[:, j]
        nan = np.isnan(v)
        missing = float(np.average(c[nan], weights=weights[nan])) if nan.any() else 0.0
        v, c, w = v[~nan], c[~nan], weights[~nan]
        if not len(v):
            out.append(Curve(np.empty(0), np.empty(0), missing))
            continue
        unique = np.unique(v)
        if len(unique) <= _CURVE_GROUPS:
            upper = unique
        else:
            upper = np.unique(np.quantile(v, np.linspace(0, 1, _CURVE_GROUPS + 1)[1:]))
        group = np.minimum(np.searchsorted(upper, v, side="left"), len(upper) - 1)
        mass = np.bincount(group, weights=w, minlength=len(upper))
        total = np.bincount(group, weights=w * c, minlength=len(upper))
        means = np.divide(total, mass, out=np.zeros_like(total), where=mass > 0)
        out.append(Curve(upper, means, missing))
    return tuple(out)


def reference_words(when: str) -> str:
    """Who a run's reference is, in words: "people aged 65+ scored for 2026-11"."""
    from features.cohort import ELIGIBLE_AGE

    return f"people aged {ELIGIBLE_AGE}+ scored for {when}"


def scored_rows(rows: pd.DataFrame, rules: Any) -> pd.DataFrame:
    """The rows a run scores under list settings `rules`: all but those whose opt-out keeps them
    unscored (`features.cohort.exclusion_flags`, the run's own rule)."""
    from features.cohort import exclusion_flags

    flags = exclusion_flags(rows, rules)
    if "opted_out" not in flags.columns:
        return rows
    return rows[~flags["opted_out"].to_numpy()]


def reference_sample(
    n: int, size: int = REFERENCE_SAMPLE, seed: int = REFERENCE_SEED
) -> np.ndarray:
    """The positions, in order, of the seeded background sample among `n` scored rows: all of
    them when there are at most `size`."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def population_reference(
    model: RiskModel,
    rows: pd.DataFrame | np.ndarray,
    *,
    mean_probability: float | None = None,
    description: str = "the people explained together",
    size: int = REFERENCE_SAMPLE,
    seed: int = REFERENCE_SEED,
    population: int | None = None,
) -> Reference:
    """The reference of the scored population `rows` (model inputs, in a fixed order): its mean
    served probability (`mean_probability` when already known, e.g. a run's stored one) and a
    seeded background sample of `size` rows (all of them when fewer), weighted so that the
    sample's weighted mean probability is that mean exactly.

    `population`: the number of people scored when `rows` are already their background sample
    (the rows at `reference_sample(population, size, seed)`, e.g. read back from a spool), with
    `mean_probability` then required."""
    x = model.matrix(rows)
    if population is None:
        n = len(x)
        picked = reference_sample(n, size, seed)
        sample = x if len(picked) == n else x[picked]
    elif mean_probability is None:
        raise ValueError("a presampled reference needs the population's mean probability")
    elif len(x) != min(population, size):
        raise ValueError(f"{len(x):,} sample rows for a population of {population:,}")
    else:
        n, sample = population, x
    if n == 0:
        raise ValueError("a reference needs at least one scored person")
    margins = _margins(model, sample)
    probs = model.calibrator.transform(margins)
    if mean_probability is None:
        everyone = probs if n <= size else model.calibrator.transform(_margins(model, x))
        mean_probability = float(everyone.mean())
    weights = _tilt(probs, float(mean_probability))
    _, contrib = _contributions(model, sample)
    return Reference(
        probability=float(mean_probability),
        description=description,
        population=n,
        margins=margins,
        probabilities=probs,
        weights=weights,
        contributions=contrib,
        curves=_curves(sample, contrib, weights),
    )


def probability_parts(
    model: RiskModel,
    contrib: np.ndarray,
    margins: np.ndarray,
    probs: np.ndarray,
    ref: Reference,
) -> np.ndarray:
    """Each feature's part (probability scale) of each row's (probability − reference): the
    weighted secant rescaling in the module docstring. Rows add up to p − reference exactly."""
    out = np.empty_like(contrib)
    w = ref.weights[None, :]
    for start in range(0, len(contrib), _CHUNK):
        stop = start + _CHUNK
        m, p = margins[start:stop, None], probs[start:stop, None]
        dm = m - ref.margins[None, :]
        dp = p - ref.probabilities[None, :]
        stable = np.abs(dm) > _TINY_LOG_ODDS
        local = model.calibrator.slope * p * (1.0 - p)  # the secant's limit
        rate = np.where(stable, dp / np.where(stable, dm, 1.0), local) * w
        out[start:stop] = contrib[start:stop] * rate.sum(axis=1)[:, None] - rate @ ref.contributions
    return out


# --- explanations ----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _person_ids(rows: pd.DataFrame) -> list[Any]:
    if PERSON_ID in rows.columns:
        return [_plain(v) for v in rows[PERSON_ID].tolist()]
    return [None] * len(rows)


@dataclass(frozen=True)
class _Concepts:
    names: list[str]
    members: list[list[int]]  # feature columns of each concept
    onehot: np.ndarray  # [features, concepts]
    briefs: list[list[int]]  # columns of each concept with a brief form


def _concepts(feats: list[Any]) -> _Concepts:
    names = list(dict.fromkeys(f.concept_name for f in feats))
    index = {c: k for k, c in enumerate(names)}
    members: list[list[int]] = [[] for _ in names]
    for j, f in enumerate(feats):
        members[index[f.concept_name]].append(j)
    onehot = np.zeros((len(feats), len(names)))
    for k, cols in enumerate(members):
        onehot[cols, k] = 1.0
    briefs = [[j for j in cols if feats[j].brief] for cols in members]
    return _Concepts(names, members, onehot, briefs)


def _sentence(feats: list[Any], main: int, briefs: list[int], values: list[float]) -> str:
    """The main feature's phrase, with the brief of the first other feature of the concept that
    has something recorded: "3 emergency admissions in the last 12 months (5 in 3 years)"."""
    text = phrase(feats[main], clean_value(values[main]))
    for j in briefs:
        value = clean_value(values[j])
        if j != main and not feats[j].is_none(value):
            return f"{text} ({phrase(feats[j], value, feats[j].brief)})"
    return text


def explain(
    model: RiskModel,
    rows: pd.DataFrame,
    top_n: int = 5,
    features: FeatureDefs = None,
    reference: Reference | None = None,
) -> list[Explanation]:
    """Explain each row: served probability, band, the reference it is measured against, and
    at most `top_n` concepts raising and lowering risk (each at least `MIN_POINTS`), worded
    from the feature definitions and grouped by domain.

    `features`: feature definitions (mapping or iterable of `Feature`); default the registry.
    `reference`: default the rows themselves ("the people explained together").
    """
    if top_n < 0:
        raise ValueError(f"top_n must be ≥ 0, got {top_n}")
    defs = feature_map(features, model.feature_names)
    names = model.feature_names
    values = model.matrix(rows)
    if reference is None:
        if not len(values):
            return []
        reference = population_reference(model, values)
    ref = reference
    base, contrib = _contributions(model, values)
    margins = _margins(model, values)
    probs = model.calibrator.transform(margins)
    bands = model.band(probs).tolist()
    points = probability_parts(model, contrib, margins, probs, ref)

    feats = [defs[n] for n in names]
    concepts = _concepts(feats)
    concept_p = points @ concepts.onehot
    concept_lo = (contrib @ concepts.onehot).tolist()
    domain_names = list(dict.fromkeys(f.domain for f in feats))
    d_onehot = np.array([[f.domain == dn for dn in domain_names] for f in feats], dtype=float)
    domain_lo, domain_p = (contrib @ d_onehot).tolist(), (points @ d_onehot).tolist()
    domain_index = {dn: k for k, dn in enumerate(domain_names)}
    total_lo, total_p = contrib.sum(axis=1).tolist(), (probs - ref.probability).tolist()

    order = np.argsort(concept_p, axis=1, kind="stable")
    picked = np.concatenate([order[:, ::-1][:, :top_n], order[:, :top_n]], axis=1)
    pick_p = np.take_along_axis(concept_p, picked, axis=1).tolist()
    concept_domain = [feats[cols[0]].domain for cols in concepts.members]

    out: list[Explanation] = []
    for r, person in enumerate(_person_ids(rows)):
        raising: list[Reason] = []
        lowering: list[Reason] = []
        groups: dict[str, tuple[list[Reason], list[Reason]]] = {}
        shown_lo = shown_p = 0.0
        row_points = points[r]
        row_values = values[r].tolist()
        for i, k in enumerate(picked[r].tolist()):
            size = pick_p[r][i]
            up = i < top_n
            if (up and size < MIN_POINTS) or (not up and size > -MIN_POINTS):
                continue
            cols = concepts.members[k]
            main = max(cols, key=lambda j: row_points[j] if up else -row_points[j])
            value = clean_value(row_values[main])
            curve = ref.curves[main].at(value)
            note = None
            if not up and curve > CURVE_TOLERANCE:
                note = USUALLY_RAISES
            elif up and curve < -CURVE_TOLERANCE:
                note = USUALLY_LOWERS
            feat = feats[main]
            reason = Reason(
                concept=concepts.names[k],
                feature=feat.name,
                domain=concept_domain[k],
                sentence=_sentence(feats, main, concepts.briefs[k], row_values),
                value=value,
                log_odds=concept_lo[r][k],
                probability_change=size,
                absent=feat.is_none(value),
                note=note,
            )
            (raising if up else lowering).append(reason)
            groups.setdefault(reason.domain, ([], []))[0 if up else 1].append(reason)
            shown_lo += reason.log_odds
            shown_p += size
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
                reference_probability=ref.probability,
                reference=ref.description,
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


def explanation_steps(explanation: Explanation) -> list[tuple[str, float]]:
    """An explanation as the waterfall chart reads it, in words, in order: the reference, each
    shown reason, all other factors; each with its size (a probability for the reference,
    points otherwise). They add up exactly to the served probability."""
    e = explanation
    steps = [(f"average for {e.reference}: {100 * e.reference_probability:.1f}%",
              e.reference_probability)]  # fmt: skip
    for r in e.raising + e.lowering:
        size = r.probability_change
        steps.append((f"{r.sentence} ({format_points(size)})", size))
    steps.append(
        (f"all other factors ({format_points(e.other_probability_change)})",
         e.other_probability_change)
    )  # fmt: skip
    return steps


def explanation_alt(explanation: Explanation) -> str:
    """A text equivalent of the waterfall chart (its alt text): every step, in order."""
    e = explanation
    steps = "; ".join(text for text, _ in explanation_steps(e))
    return f"Waterfall chart: {steps}; this person: {100 * e.probability:.1f}% ({e.band})."


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

    prev_x, cur_x = model.matrix(previous_rows), model.matrix(current_rows)
    _, prev_c = _contributions(model, prev_x[pi])
    _, cur_c = _contributions(model, cur_x[ci])
    prev_m, cur_m = _margins(model, prev_x), _margins(model, cur_x)
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
    reference: Reference | None = None,
    outcome: Any = None,
) -> WhatIf:
    """Recompute one person's score and explanation with some root inputs changed.

    Only model inputs whose definition has `adjustable=True` may change; values must fit the
    feature's kind (counts whole and ≥ 0, flags 0/1, codes one of the labels, None for a
    days-since feature meaning "never"). Raise naming every offending feature. With the
    registry's definitions (`features` None), the dependents (eFI, polypharmacy flags, counts of
    medicine groups, ...) are re-derived from their definitions (`features.what_if.rederive`),
    impossible combinations are refused, and inputs the outcome (`outcome`, default
    `OutcomeSettings()`) counts are named in `warnings`.
    """
    registry = features is None
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
    derived: list[str] = []
    warnings: list[str] = []
    if registry:
        from features.what_if import outcome_warnings, rederive

        stored = {n: clean_value(before_row[n].iloc[0]) for n in model.feature_names}
        roots = {n: clean_value(v) for n, v in clean.items()}
        new, derived = rederive(stored, roots)  # ValueError: an impossible combination
        for name in model.feature_names:
            after_row[name] = np.nan if new[name] is None else new[name]
        warnings = outcome_warnings(clean, outcome)
    else:
        for name, value in clean.items():
            after_row[name] = float(value)
    ref = reference or population_reference(model, before_row)
    both = pd.concat([before_row, after_row])
    before, after = explain(model, both, top_n, defs, ref)
    _, contrib = contributions(model, both)
    delta_lo = contrib[1] - contrib[0]
    delta_p = share_probability(
        model, delta_lo, np.array([before.probability]), np.array([after.probability])
    )[0]
    before_x = model.matrix(before_row)[0]
    after_x = model.matrix(after_row)[0]
    moved_names = [*clean, *(n for n in derived if n in defs)]
    changed_idx = [model.feature_names.index(n) for n in moved_names]
    moves, _, _ = _movements(model, defs, before_x, after_x, delta_lo, delta_p, None)
    moves = [m for m in moves if m.feature in moved_names]
    other_lo = float(delta_lo.sum() - delta_lo[changed_idx].sum())
    other_p = float(delta_p.sum() - delta_p[changed_idx].sum())
    changed = {
        n: {
            "before": clean_value(before_x[model.feature_names.index(n)]),
            "after": clean_value(after_x[model.feature_names.index(n)]),
        }
        for n in moved_names
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
        derived=derived,
        warnings=warnings,
    )
