"""Population segments, written once: each person of a month's run in exactly one of three groups,
with the reason in words.

The groups are Staffordshire and Stoke-on-Trent's population segments, which its commissioners and
neighbourhood leads plan by:

- **In The System** (`in_the_system`): receiving care in an NHS or social care setting outside
  their home: in hospital on the index date D (a spell admitted before D and not discharged before
  D; a discharge on D still counts), living in a care home (the `in_care_home` feature), or on a
  caseload of `[segments] system_caseloads` (default care home support);
- **High risk and Independent** (`high_risk_independent`): otherwise, living at home with support
  or at high risk: a current home care or direct payment service (`independent_services`), a
  caseload of `independent_caseloads` (default neighbourhood MDT, community matron, end of life),
  frailty on the eFI at `min_efi_band` or above (default moderate), or a calibrated probability of
  at least `risk_probability` (default 0.30, the lower bound of the "high" risk band);
- **Fit and Well** (`fit_and_well`): everyone else.

A service or caseload ending on D is current on D (the features' rule, `features.blocks`). The
rules read feature-table columns and the run's probability; thresholds are `[segments]` settings
(`config.settings.SegmentSettings`). People the run keeps no score for (opted out, unless the site
uses its lists for direct care) get no segment.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from config.settings import SegmentSettings
from features.cohort import CARE_HOME_COLUMN, caseload_column
from features.registry import CASELOAD_NAMES, EFI_LABELS
from records.contract import CASELOADS, SOCIAL_CARE_SERVICES

# key -> the words on every export and page, in the order a person's segment is chosen.
SEGMENTS: dict[str, str] = {
    "in_the_system": "in the system",
    "high_risk_independent": "high risk and independent",
    "fit_and_well": "fit and well",
}
# The named group within fit and well whose risk rose most since last month (scoring.segments).
RISING_RISK = "rising risk"

IN_HOSPITAL_COLUMN = "days_in_hospital"
HOME_CARE_COLUMN = "home_care_hours_per_week"
DIRECT_PAYMENT_COLUMN = "direct_payment_current"
EFI_BAND_COLUMN = "efi_band"
PROBABILITY = "probability"  # the run's calibrated probability, passed beside the features
EFI_BANDS = {"mild": 1, "moderate": 2, "severe": 3}  # efi_band codes (features.registry)
if not {"long_term_community", "direct_payment"} <= set(SOCIAL_CARE_SERVICES):
    raise RuntimeError("segment services are not in the contract vocabulary")

Values = Callable[[pd.DataFrame], np.ndarray]


@dataclass(frozen=True)
class SegmentRule:
    """One rule: the segment it places a person in, the columns it reads, which rows it holds
    for, and the reason in words for each row it holds for."""

    key: str
    segment: str
    columns: tuple[str, ...]
    holds: Values  # bool per row
    words: Callable[[pd.DataFrame, date], list[str]]  # reason per row (rows it holds for)


def _number(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise ValueError(f"feature table has no column {column!r} (needed by the segments)")
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    return np.nan_to_num(_number(frame, column), nan=0.0) > 0


def day_words(day: date, index_date: date) -> str:
    """ "12 May", with the year when it is not the index date's year."""
    text = f"{day.day} {day:%B}"
    return text if day.year == index_date.year else f"{text} {day.year}"


def hours_words(hours: float) -> str:
    """ "home care, 14 hours a week" (just "home care" when no hours are recorded)."""
    if not hours or math.isnan(hours):
        return "home care"
    shown = f"{hours:,.1f}".rstrip("0").rstrip(".")
    return f"home care, {shown} hour{'' if shown == '1' else 's'} a week"


def risk_percent(probability: np.ndarray) -> np.ndarray:
    """Each probability in whole percent, rounded down, so the words never show a person below a
    whole-percent threshold at it."""
    return np.floor(np.asarray(probability, dtype=float) * 100 + 1e-9).astype(int)


def _risk_text(percent: int) -> str:
    return f"risk {percent:d}%"


def risk_words(probability: float) -> str:
    """ "risk 34%": the probability in whole percent, rounded down (`risk_percent`)."""
    return _risk_text(int(risk_percent(probability)))


def _in_hospital_words(frame: pd.DataFrame, index_date: date) -> list[str]:
    days = _number(frame, IN_HOSPITAL_COLUMN)
    return [
        "in hospital" if math.isnan(d) else
        f"in hospital since {day_words(index_date - timedelta(days=int(d)), index_date)}"
        for d in days
    ]  # fmt: skip


def _constant(text: str) -> Callable[[pd.DataFrame, date], list[str]]:
    return lambda frame, _: [text] * len(frame)


def rules(settings: SegmentSettings) -> tuple[SegmentRule, ...]:
    """The segment rules under `settings`, in the order their reasons are given."""
    out = [
        SegmentRule(
            "in_hospital", "in_the_system", (IN_HOSPITAL_COLUMN,),
            lambda f: ~np.isnan(_number(f, IN_HOSPITAL_COLUMN)), _in_hospital_words,
        ),
        SegmentRule(
            "care_home", "in_the_system", (CARE_HOME_COLUMN,),
            lambda f: _flag(f, CARE_HOME_COLUMN), _constant("lives in a care home"),
        ),
    ]  # fmt: skip

    def caseload(c: str, segment: str) -> SegmentRule:
        column = caseload_column(c)
        return SegmentRule(
            f"caseload_{c}", segment, (column,), lambda f: _flag(f, column),
            _constant(f"on {CASELOAD_NAMES[c]} caseload"),
        )  # fmt: skip

    out += [caseload(c, "in_the_system") for c in CASELOADS if c in settings.system_caseloads]
    if "long_term_community" in settings.independent_services:
        out.append(
            SegmentRule(
                "home_care", "high_risk_independent", (HOME_CARE_COLUMN,),
                lambda f: ~np.isnan(_number(f, HOME_CARE_COLUMN)),
                lambda f, _: [hours_words(h) for h in _number(f, HOME_CARE_COLUMN)],
            )
        )  # fmt: skip
    if "direct_payment" in settings.independent_services:
        out.append(
            SegmentRule(
                "direct_payment", "high_risk_independent", (DIRECT_PAYMENT_COLUMN,),
                lambda f: _flag(f, DIRECT_PAYMENT_COLUMN),
                _constant("social care direct payment"),
            )
        )  # fmt: skip
    out += [
        caseload(c, "high_risk_independent")
        for c in CASELOADS
        if c in settings.independent_caseloads and c not in settings.system_caseloads
    ]
    lowest = EFI_BANDS[settings.min_efi_band]
    out.append(
        SegmentRule(
            "frailty", "high_risk_independent", (EFI_BAND_COLUMN,),
            lambda f: np.nan_to_num(_number(f, EFI_BAND_COLUMN), nan=-1) >= lowest,
            lambda f, _: [
                f"{EFI_LABELS.get(int(b), 'frailty')} on the eFI" if not math.isnan(b) else ""
                for b in _number(f, EFI_BAND_COLUMN)
            ],
        )
    )  # fmt: skip
    threshold = settings.risk_probability
    out.append(
        SegmentRule(
            "risk", "high_risk_independent", (PROBABILITY,),
            lambda f: np.nan_to_num(_number(f, PROBABILITY), nan=-1.0) >= threshold,
            lambda f, _: [risk_words(p) for p in _number(f, PROBABILITY)],
        )
    )  # fmt: skip
    return tuple(out)


def columns_read(settings: SegmentSettings) -> list[str]:
    """The feature-table columns the segment rules read (besides the probability)."""
    cols = (c for r in rules(settings) for c in r.columns if c != PROBABILITY)
    return list(dict.fromkeys(cols))


FIT_AND_WELL_WORDS = "no hospital stay, care home, care service or caseload now"


def assign_segments(
    features: pd.DataFrame,
    probability: np.ndarray | pd.Series,
    index_date: date,
    settings: SegmentSettings,
) -> pd.DataFrame:
    """`segment` and `segment_reason` for each row of `features` (the run's eligible
    population), in its order and index. `probability` is the run's, one per row; a row with no
    probability (the run keeps no score for the person) gets neither."""
    probability = np.asarray(probability, dtype=float)
    if len(probability) != len(features):
        raise ValueError("probability must have one value per feature row")
    # Only the columns the rules read, and the probability (nothing copied, no column added
    # to the caller's wide frame).
    read = [c for c in columns_read(settings) if c in features.columns]
    frame = pd.DataFrame({c: features[c].to_numpy() for c in read} | {PROBABILITY: probability})
    n = len(frame)
    segment = np.full(n, None, dtype=object)
    reasons: list[list[str]] = [[] for _ in range(n)]
    scored = ~np.isnan(probability)
    for key in SEGMENTS:
        if key == "fit_and_well":
            continue
        placed = np.zeros(n, dtype=bool)
        open_rows = scored & (segment == None)  # noqa: E711 (element-wise)
        for rule in (r for r in rules(settings) if r.segment == key):
            holds = rule.holds(frame) & open_rows
            if not holds.any():
                continue
            rows = np.flatnonzero(holds)
            for i, words in zip(rows, rule.words(frame.iloc[rows], index_date), strict=True):
                if words:
                    reasons[i].append(words)
            placed |= holds
        segment[placed] = key
    rest = scored & (segment == None)  # noqa: E711
    rest_rows = np.flatnonzero(rest)
    percents = risk_percent(probability[rest_rows])
    words = {k: f"{_risk_text(k)}; {FIT_AND_WELL_WORDS}" for k in np.unique(percents).tolist()}
    for i, k in zip(rest_rows.tolist(), percents.tolist(), strict=True):
        reasons[i] = [words[k]]
    segment[rest] = "fit_and_well"
    return pd.DataFrame(
        {
            "segment": pd.Series(segment, dtype="string"),
            "segment_reason": pd.Series(
                [
                    "; ".join(r) if s is not None else None
                    for r, s in zip(reasons, segment, strict=True)
                ],
                dtype="string",
            ),
        }
    ).set_axis(features.index)
