"""The cohort, written once: who is eligible at an index date and why not, who the lists leave out
and why, who the model is trained on, and the month-to-month list flags.

Eligibility (contract, "Eligibility"): aged 65 or over, alive and registered with a practice on the
index date D. Each rule is one SQL condition; `eligibility_sql` joins them for the feature and
outcome queries and `ineligibility_sql` names the first rule a person fails, so the two can never
disagree. A death or registration end on D leaves the person alive and registered on D; a
registration starting on D counts.

The listed population is the eligible one less the exclusions of `[lists]` (opt-out, caseloads,
care home). The modelled population is the same rule set, with two differences, both named here
and stated in the model card: opted-out people are never trained on (training is secondary use,
even where a site lists them as direct care), and `[training] also_exclude_caseloads` (default
none) leaves further caseloads out of training only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.dates import add_months, sql_date
from records.contract import CASELOADS

if TYPE_CHECKING:
    from config.settings import ListSettings, Settings
    from records import Extract

ELIGIBLE_AGE = 65  # years on the index date (contract: eligibility)


@dataclass(frozen=True)
class EligibilityRule:
    """One eligibility rule: its key, why someone failing it is not eligible, and the SQL
    condition (on `people` as {p}) that holds for people who meet it."""

    key: str
    words: str
    sql: str

    def condition(self, index_date: date, alias: str = "p") -> str:
        born_by = add_months(index_date, -12 * ELIGIBLE_AGE)
        return self.sql.format(p=alias, d=sql_date(index_date), born_by=sql_date(born_by))


# In the order a person's single reason is chosen.
ELIGIBILITY: tuple[EligibilityRule, ...] = (
    EligibilityRule(
        "died",
        "died before the index date",
        "({p}.date_of_death IS NULL OR {p}.date_of_death >= {d})",
    ),
    EligibilityRule(
        "not_registered",
        "not registered with a practice on the index date",
        "({p}.registration_start IS NULL OR {p}.registration_start <= {d}) "
        "AND ({p}.registration_end IS NULL OR {p}.registration_end >= {d})",
    ),
    EligibilityRule(
        "under_65",
        f"under {ELIGIBLE_AGE} on the index date",
        "{p}.birth_date <= {born_by}",
    ),
)
# Why a person in the extract is not in the scored population at all.
INELIGIBLE: dict[str, str] = {rule.key: rule.words for rule in ELIGIBILITY}


def eligibility_sql(index_date: date, alias: str = "p") -> str:
    """SQL condition on `people` (as `alias`): eligible on `index_date`."""
    return " AND ".join(f"({rule.condition(index_date, alias)})" for rule in ELIGIBILITY)


def ineligibility_sql(index_date: date, alias: str = "p") -> str:
    """SQL expression on `people`: the key of the first eligibility rule a person fails on
    `index_date`, NULL when eligible."""
    cases = " ".join(
        f"WHEN NOT ({rule.condition(index_date, alias)}) THEN '{rule.key}'" for rule in ELIGIBILITY
    )
    return f"CASE {cases} END"


def ineligible_people(extract: Extract, index_date: date) -> pd.DataFrame:
    """person_id, neighbourhood, reason for everyone in the extract not eligible on
    `index_date` (one query in the engine)."""
    reason = ineligibility_sql(index_date)
    frame = extract.frame(
        f"SELECT * FROM (SELECT p.person_id, p.neighbourhood, {reason} AS reason "
        "FROM people AS p) AS x WHERE reason IS NOT NULL ORDER BY person_id"
    )
    for column in frame.columns:
        frame[column] = frame[column].astype("string")
    return frame


# Why an eligible person is kept off the list, in the order a person's single reason is chosen.
# Opt-out comes first: an opted-out person's record is not looked at further.
EXCLUSIONS: dict[str, str] = {
    "opted_out": "opted out of data use beyond direct care",
    "caseload_neighbourhood_mdt": "already on the neighbourhood MDT caseload",
    "caseload_end_of_life": "on an end-of-life caseload",
    "caseload_community_matron": "on a community matron caseload",
    "caseload_care_home_support": "on a care home support caseload",
    "care_home": "living in a care home",
}
assert [k for k in EXCLUSIONS if k.startswith("caseload_")] == [f"caseload_{c}" for c in CASELOADS]

# The feature-table columns the exclusions read.
OPT_OUT_COLUMN = "data_opt_out"
CARE_HOME_COLUMN = "in_care_home"


def caseload_column(caseload: str) -> str:
    """The feature-table flag for being on `caseload` at the index date."""
    return f"on_caseload_{caseload}"


# Flags a listed person carries from month to month: key -> the words shown on every export,
# page and summary.
LIST_FLAGS: dict[str, str] = {
    "new_this_month": "new this month",
    "on_last_month_list": "on last month's list",
    "risk_risen": "risk risen",
    # Population segment (features.segments) differs from last month's run (scoring.segments).
    "moved_segment": "moved segment",
}


def _flag(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A 0/1/bool/missing column as a bool array (missing counts as false)."""
    if column not in frame.columns:
        raise ValueError(f"feature table has no column {column!r} (needed by the list rules)")
    return frame[column].fillna(0).astype(float).to_numpy() > 0


def exclusion_flags(
    features: pd.DataFrame,
    rules: ListSettings,
    *,
    opted_out: bool | None = None,
    caseloads: tuple[str, ...] = (),
) -> pd.DataFrame:
    """For each person, one bool column per exclusion that applies under `rules` (all that
    apply). `opted_out` overrides whether opt-out excludes (default: unless direct care use);
    `caseloads` adds caseloads to those `rules` exclude."""
    flags: dict[str, np.ndarray] = {}
    if (not rules.direct_care_use) if opted_out is None else opted_out:
        flags["opted_out"] = _flag(features, OPT_OUT_COLUMN)
    excluded = set(rules.exclude_caseloads) | set(caseloads)
    for caseload in CASELOADS:
        if caseload in excluded:
            flags[f"caseload_{caseload}"] = _flag(features, caseload_column(caseload))
    if rules.exclude_care_home:
        flags["care_home"] = _flag(features, CARE_HOME_COLUMN)
    return pd.DataFrame(flags, index=features.index, columns=list(flags) or None)


def exclusion_reason(flags: pd.DataFrame) -> pd.Series:
    """Each person's first applicable exclusion (in `EXCLUSIONS` order), or missing."""
    reason = pd.Series(pd.NA, index=flags.index, dtype="string")
    for key in reversed([k for k in EXCLUSIONS if k in flags.columns]):
        reason = reason.mask(flags[key].to_numpy(), key)
    return reason


def training_exclusions(panel: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The exclusion flags of the modelled population: the list's rule set, opted-out people
    always, and `[training] also_exclude_caseloads`."""
    return exclusion_flags(
        panel,
        settings.lists,
        opted_out=True,
        caseloads=tuple(settings.training.also_exclude_caseloads),
    )


def modelled_population(panel: pd.DataFrame, settings: Settings) -> pd.Series:
    """True for panel rows in the population the model is trained and evaluated on."""
    return ~training_exclusions(panel, settings).any(axis=1)


def population_rules(settings: Settings) -> list[str]:
    """The modelled population's exclusions in words, for the model card ("not living in a care
    home", ...)."""
    words = [EXCLUSIONS[k] for k in training_exclusions(_no_rows(), settings).columns]
    return [w if w.startswith("not ") else f"not {w}" for w in words] or [
        "with no further exclusions"
    ]


def population_differences(settings: Settings) -> list[str]:
    """How the modelled population differs from the listed one, in words (one line saying they
    are the same when they are)."""
    rules = settings.lists
    differences = []
    if rules.direct_care_use:
        differences.append(
            "opted-out people are listed (direct care use) but never used for training"
        )
    also = settings.training.also_exclude_caseloads
    extra = [c for c in also if c not in rules.exclude_caseloads]
    if extra:
        differences.append(
            "people on the "
            + ", ".join(c.replace("_", " ") for c in extra)
            + " caseload(s) are listed but not trained on ([training] also_exclude_caseloads)"
        )
    return differences or ["none: it is the population the lists are drawn from"]


def _no_rows() -> pd.DataFrame:
    columns = [OPT_OUT_COLUMN, CARE_HOME_COLUMN, *(caseload_column(c) for c in CASELOADS)]
    return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
