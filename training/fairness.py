"""The model's metrics within groups (sex, age band, IMD quintile, ethnicity group, neighbourhood),
with groups beyond the configured tolerances flagged.

Computed like fairlearn's MetricFrame (one metric function applied to each group's rows, plus the
whole set), but directly on numpy arrays: MetricFrame's per-row conversion of sample parameters
takes seconds per attribute on a 50,000-row test set.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from config.settings import SegmentSettings, TrainingSettings
from training.metrics import calibration_slope_intercept

# Panel columns that define groups.
AGE, SEX, IMD, ETHNICITY, NEIGHBOURHOOD = (
    "age",
    "sex",
    "imd_decile",
    "ethnicity_group",
    "neighbourhood",
)
# NHS Person Stated Gender Code (contract).
SEX_LABELS = {"1": "male", "2": "female", "9": "indeterminate", "0": "not known"}
AGE_BANDS = ((65, 74, "65-74"), (75, 84, "75-84"), (85, 200, "85+"))
# A difference beyond tolerance is flagged only when chance is an unlikely explanation
# (two-sided 5% level), so small groups are not flagged on noise.
SIGNIFICANT_Z = 1.96


def _code(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _ethnicity_labels() -> dict[str, str]:
    try:
        from features.registry import FEATURES  # type: ignore[import-not-found]
    except ImportError:
        return {}
    for feature in FEATURES:
        if feature.name == ETHNICITY:
            return {str(k): v for k, v in feature.labels.items()}
    return {}


def group_columns(rows: pd.DataFrame) -> pd.DataFrame:
    """One labelled column per fairness attribute, for the rows that have the source field."""
    out = pd.DataFrame(index=rows.index)
    if SEX in rows:
        out["sex"] = [SEX_LABELS.get(_code(v), _code(v)) for v in rows[SEX]]
    if AGE in rows:
        age = rows[AGE].astype(float)
        band = pd.Series("under 65", index=rows.index, dtype=object)
        for low, high, label in AGE_BANDS:
            band[(age >= low) & (age < high + 1)] = label
        band[age.isna()] = "missing"
        out["age band"] = band
    if IMD in rows:
        decile = rows[IMD].astype(float)
        quintile = np.ceil(decile / 2)
        out["IMD quintile"] = [
            "missing" if math.isnan(q) else f"Q{int(q)}" + (" (most deprived)" if q == 1 else "")
            for q in quintile
        ]
    if ETHNICITY in rows:
        labels = _ethnicity_labels()
        out["ethnicity group"] = [labels.get(_code(v), _code(v)) for v in rows[ETHNICITY]]
    if NEIGHBOURHOOD in rows:
        out["neighbourhood"] = rows[NEIGHBOURHOOD].astype(str).to_numpy()
    return out


def _safe(fn: Callable[[np.ndarray, np.ndarray], float]) -> Callable[..., float]:
    def metric(y_true: np.ndarray, y_pred: np.ndarray, **kwargs: np.ndarray) -> float:
        y = np.asarray(y_true)
        if len(y) == 0:
            return math.nan
        return fn(y, np.asarray(y_pred), **kwargs)

    return metric


def _auroc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else math.nan


def _auprc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p)) if 0 < y.sum() < len(y) else math.nan


def _slope(y: np.ndarray, p: np.ndarray) -> float:
    return calibration_slope_intercept(y, p)[0] if 0 < y.sum() < len(y) else math.nan


def _oe_z(y: np.ndarray, p: np.ndarray) -> float:
    """(observed - expected) / its standard deviation if the predictions were right."""
    variance = float(np.sum(p * (1 - p)))
    return float((y.sum() - p.sum()) / math.sqrt(variance)) if variance > 0 else math.nan


def _fnr(y: np.ndarray, p: np.ndarray, flags: np.ndarray) -> float:
    positives = y.astype(bool)
    return float((~flags[positives]).mean()) if positives.any() else math.nan


def _ppv(y: np.ndarray, p: np.ndarray, flags: np.ndarray) -> float:
    return float(y[flags].mean()) if flags.any() else math.nan


def _selection(y: np.ndarray, p: np.ndarray, flags: np.ndarray) -> float:
    return float(flags.mean())


METRICS: dict[str, Callable[..., float]] = {
    "rows": _safe(lambda y, p: float(len(y))),
    "outcomes": _safe(lambda y, p: float(y.sum())),
    "observed_rate": _safe(lambda y, p: float(y.mean())),
    "expected_rate": _safe(lambda y, p: float(p.mean())),
    "oe_ratio": _safe(lambda y, p: float(y.sum() / p.sum()) if p.sum() > 0 else math.nan),
    "oe_z": _safe(_oe_z),
    "auroc": _safe(_auroc),
    "auprc": _safe(_auprc),
    "brier": _safe(lambda y, p: float(np.mean((p - y) ** 2))),
    "calibration_slope": _safe(_slope),
    "fnr_list": _safe(_fnr),
    "ppv_list": _safe(_ppv),
    "selection_rate_list": _safe(_selection),
}
_FLAGGED = ("fnr_list", "ppv_list", "selection_rate_list")


def _metrics(y: np.ndarray, p: np.ndarray, flags: np.ndarray) -> dict[str, float]:
    return {
        name: fn(y, p, flags=flags) if name in _FLAGGED else fn(y, p)
        for name, fn in METRICS.items()
    }


def fairness_table(
    rows: pd.DataFrame,
    y: np.ndarray,
    p: np.ndarray,
    list_flags: np.ndarray,
    settings: TrainingSettings,
    segments: SegmentSettings | None = None,
) -> pd.DataFrame:
    """Metrics per group of each attribute, with the whole test set first ("all") and a `flag`
    column giving, for groups beyond tolerance, the reasons (empty when fine or too small).

    With `segments`, and when the rows hold the columns the segment rules read, the population
    segments (`features.segments`, from the rows and the model's `p`) are one more attribute,
    "segment": reported, never flagged (they are where the list is drawn from, not a protected
    group, and so do not enter the promotion gate)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    list_flags = np.asarray(list_flags, dtype=bool)
    groups = group_columns(rows)
    if groups.empty:
        raise ValueError("no fairness attribute columns in the rows")
    segment = segment_labels(rows, p, segments) if segments is not None else None
    if segment is not None:
        groups[SEGMENT] = segment
    overall = pd.Series(_metrics(y, p, list_flags))
    frames: list[pd.DataFrame] = []
    for attribute in groups.columns:
        labels = groups[attribute].to_numpy(dtype=object)
        records = []
        for group in sorted(set(labels), key=str):
            mask = labels == group
            records.append(
                {
                    "attribute": attribute,
                    "group": group,
                    **_metrics(y[mask], p[mask], list_flags[mask]),
                }
            )
        frames.append(pd.DataFrame(records))
    first = pd.DataFrame([{"attribute": "all", "group": "all", **overall.to_dict()}])
    table = pd.concat([first, *frames], ignore_index=True)
    table["flag"] = [_flag_reasons(row, overall, settings) for _, row in table.iterrows()]
    return table


SEGMENT = "segment"  # the attribute name of the population segments' rows


def segment_labels(
    rows: pd.DataFrame, p: np.ndarray, segments: SegmentSettings
) -> np.ndarray | None:
    """Each row's population segment in words, from its features and probability (None when
    the rows lack a column the segment rules read)."""
    from datetime import date

    from features.segments import SEGMENTS, assign_segments, columns_read

    if any(c not in rows.columns for c in columns_read(segments)):
        return None
    keys = assign_segments(rows, p, date(2000, 1, 1), segments)["segment"]
    return np.array([SEGMENTS.get(k, "missing") if pd.notna(k) else "missing" for k in keys],
                    dtype=object)  # fmt: skip


def _flag_reasons(row: pd.Series, overall: pd.Series, settings: TrainingSettings) -> str:
    if row["attribute"] in ("all", SEGMENT):
        return ""
    if row["rows"] < settings.fairness_min_rows or row["outcomes"] < settings.fairness_min_outcomes:
        return ""
    reasons: list[str] = []
    oe, oe_z = row["oe_ratio"], row["oe_z"]
    if (
        not math.isnan(oe)
        and abs(oe - 1) > settings.fairness_oe_tolerance
        and abs(oe_z) > SIGNIFICANT_Z
    ):
        reasons.append(f"observed/expected {oe:.2f}")
    fnr, fnr_all = row["fnr_list"], overall["fnr_list"]
    if not math.isnan(fnr) and fnr - fnr_all > settings.fairness_fnr_tolerance:
        # Binomial z for the group's FNR against the overall rate.
        se = math.sqrt(max(fnr_all * (1 - fnr_all), 1e-9) / row["outcomes"])
        if (fnr - fnr_all) / se > SIGNIFICANT_Z:
            reasons.append(f"false-negative rate {fnr:.2f} vs {fnr_all:.2f} overall")
    auroc, auroc_all = row["auroc"], overall["auroc"]
    if not math.isnan(auroc) and auroc_all - auroc > settings.fairness_auroc_tolerance:
        reasons.append(f"AUROC {auroc:.3f} vs {auroc_all:.3f} overall")
    return "; ".join(reasons)


def flagged_groups(table: pd.DataFrame) -> set[str]:
    """'attribute=group' for each flagged row."""
    return {f"{r.attribute}={r.group}" for r in table.itertuples() if r.flag}
