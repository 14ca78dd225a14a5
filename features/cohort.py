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
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from features.dates import add_months, sql_date
from records.contract import CASELOADS

if TYPE_CHECKING:
    from config.settings import ListSettings, ReviewSettings, Settings
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


@dataclass(frozen=True)
class PersonSample:
    """A seeded share of people, kept or dropped whole (every index date of a person together):
    those whose MD5 of "seed:person_id" starts below `fraction` of the hex range. The same
    people on every run and on both engines (DuckDB and Spark compute the same MD5)."""

    fraction: float
    seed: int

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"sample fraction must be in (0, 1], not {self.fraction}")

    def condition(self, alias: str = "p") -> str:
        """SQL condition on a table with `person_id` (as `alias`): in the sample."""
        if self.fraction >= 1.0:
            return "1 = 1"
        cut = f"{min(int(self.fraction * 16**8), 16**8 - 1):08x}"  # 8 hex digits compare as text
        return f"substring(md5(concat('{self.seed}', ':', {alias}.person_id)), 1, 8) < '{cut}'"

    @classmethod
    def for_training(cls, settings: Settings) -> PersonSample | None:
        """`[engine] training_sample_fraction` and `_seed` as a sample; None for everyone."""
        engine = settings.engine
        if engine.training_sample_fraction >= 1.0:
            return None
        return cls(engine.training_sample_fraction, engine.training_sample_seed)

    def describe(self) -> str:
        """The sample in words (model card, run parameters)."""
        if self.fraction >= 1.0:
            return "all people"
        return f"a seeded sample of {self.fraction:.0%} of people (seed {self.seed}), by person"


def cohort_sql(index_date: date, sample: PersonSample | None = None, alias: str = "p") -> str:
    """SQL condition on `people`: eligible on `index_date` and, when given, in `sample`."""
    where = eligibility_sql(index_date, alias)
    return where if sample is None else f"{where} AND ({sample.condition(alias)})"


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
    # The MDT's decisions (REVIEW_OUTCOMES, `review_status`): an open accepted episode, and a
    # recent declined / not appropriate / already known decision.
    "mdt_accepted": "accepted onto the MDT caseload",
    "mdt_reviewed": "reviewed by the MDT recently (declined, not appropriate or already known)",
}
assert [k for k in EXCLUSIONS if k.startswith("caseload_")] == [f"caseload_{c}" for c in CASELOADS]

# The feature-table columns the exclusions read.
OPT_OUT_COLUMN = "data_opt_out"
CARE_HOME_COLUMN = "in_care_home"


def caseload_column(caseload: str) -> str:
    """The feature-table flag for being on `caseload` at the index date."""
    return f"on_caseload_{caseload}"


def exclusion_columns() -> list[str]:
    """Every feature-table column `exclusion_flags` may read, whatever the rules."""
    return [OPT_OUT_COLUMN, *(caseload_column(c) for c in CASELOADS), CARE_HOME_COLUMN]


# Flags a listed person carries from month to month: key -> the words shown on every export,
# page and summary.
LIST_FLAGS: dict[str, str] = {
    "new_this_month": "new this month",
    "on_last_month_list": "on last month's list",
    "risk_risen": "risk risen",
    # Population segment (features.segments) differs from last month's run (scoring.segments).
    "moved_segment": "moved segment",
    # Listed again although the MDT reviewed them: risk up by [reviews] relist_if_risen since.
    "risk_risen_since_review": "risk risen since the MDT review",
    # The MDT deferred its decision to this month or earlier.
    "review_due": "MDT review due",
}
# What each flag means, for the legend of exports and pages (`risen_by`: `[lists] risen_by`).
LIST_FLAG_MEANINGS: dict[str, str] = {
    "new_this_month": "on a list for the first time: on no earlier month's list",
    "on_last_month_list": "on last month's list too",
    "risk_risen": "risk up by {risen_by} or more since last month",
    "moved_segment": "in another population segment than last month",
    "risk_risen_since_review": (
        "reviewed by the MDT, and listed again because the risk has risen by {relist_if_risen} "
        "or more since"
    ),
    "review_due": "the MDT deferred its decision to this month or earlier",
}
assert list(LIST_FLAG_MEANINGS) == list(LIST_FLAGS)

# What an MDT may decide for a listed person (POST /review), and the fields each needs.
REVIEW_OUTCOMES: dict[str, str] = {
    "accepted": "accepted: care co-ordinator assigned, single care plan",
    "declined": "declined by the person",
    "not_appropriate": "not appropriate",
    "already_known": "already known to a service",
    "deferred": "deferred to a later MDT",
    "closed": "closed: the accepted episode ended",
}
REVIEW_REQUIRES: dict[str, tuple[str, ...]] = {
    "not_appropriate": ("reason",),
    "already_known": ("care_coordinator",),  # the service or team that knows them
    "deferred": ("review_month",),
}
NOT_APPROPRIATE_REASONS: dict[str, str] = {
    "single_service_need": "needs one service, not a multi-agency plan",
    "risk_overstated": "risk overstated: the MDT knows the person is well",
    "end_of_life_care": "receiving end-of-life care elsewhere",
    "moved_away": "moved away or registered elsewhere",
    "other": "other (see note)",
}
# Decisions that keep a person off the list for [reviews] suppress_months.
SUPPRESSING = ("declined", "not_appropriate", "already_known")
REVIEW_COLUMNS = ("mdt_accepted", "mdt_reviewed", "risk_risen_since_review", "review_due")


def review_status(
    people: pd.DataFrame, reviews: pd.DataFrame | None, month: str, rules: ReviewSettings
) -> pd.DataFrame:
    """Per person of `people` (person_id, probability), what the MDT's earlier decisions mean
    for `month`'s list: `mdt_accepted` (an accepted review of an earlier month with no closed
    review after it), `mdt_reviewed` (latest decision declined / not appropriate / already known
    under `rules.suppress_months` months ago, and risk not up by `rules.relist_if_risen` since
    it), `risk_risen_since_review` (such a decision, but risk up that much: listed again),
    `review_due` (latest decision deferred to `month` or earlier), and `mdt_since` (the accepted
    episode's start: the care plan date, else the review date).

    `reviews`: the reviews table (person_id, month, outcome, probability, reviewed_on,
    care_plan_started, review_month, id); only reviews of months before `month` count.
    """
    from features.dates import Month

    month = Month(month)
    out = pd.DataFrame(False, index=people.index, columns=list(REVIEW_COLUMNS))
    out["mdt_since"] = pd.Series(pd.NA, index=people.index, dtype="string")
    if reviews is None or not len(reviews):
        return out
    earlier = reviews[reviews["month"].astype(str) < month].sort_values(["month", "id"])
    if not len(earlier):
        return out
    where = pd.Index(people["person_id"].astype(str))
    probability = people["probability"].to_numpy(float)
    for person_id, history in earlier.groupby(earlier["person_id"].astype(str), sort=False):
        i = where.get_indexer([person_id])[0]
        if i < 0:
            continue
        episode = history[history["outcome"].isin(("accepted", "closed"))]
        if len(episode) and episode["outcome"].iloc[-1] == "accepted":
            last = episode.iloc[-1]
            out.iloc[i, out.columns.get_loc("mdt_accepted")] = True
            out.iloc[i, out.columns.get_loc("mdt_since")] = _episode_start(last)
            continue
        latest = history.iloc[-1]
        if latest["outcome"] in SUPPRESSING:
            age = _months_between(Month(latest["month"]), month)
            if age < rules.suppress_months:
                before = latest["probability"]
                risen = (
                    before is not None
                    and not pd.isna(before)
                    and (probability[i] - float(before) >= rules.relist_if_risen - 1e-12)
                )
                column = "risk_risen_since_review" if risen else "mdt_reviewed"
                out.iloc[i, out.columns.get_loc(column)] = True
        elif latest["outcome"] == "deferred" and _text(latest["review_month"]):
            out.iloc[i, out.columns.get_loc("review_due")] = str(latest["review_month"]) <= month
    return out


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[arg-type]


def _episode_start(review: Any) -> str:
    """An accepted episode starts on the care plan's date, else on the review's."""
    return _text(review["care_plan_started"]) or str(review["reviewed_on"])


def _months_between(first: str, later: str) -> int:
    return (int(later[:4]) - int(first[:4])) * 12 + int(later[5:7]) - int(first[5:7])


def accepted_from(reviews: pd.DataFrame | None) -> pd.DataFrame:
    """person_id, start, end of each accepted MDT episode (start: the care plan date, else the
    review date; end: the next closed review's date, missing while open): the person-time
    training leaves out under `[training] exclude_after_mdt_acceptance`."""
    rows = []
    if reviews is not None and len(reviews):
        ordered = reviews.sort_values(["month", "id"])
        for person_id, history in ordered.groupby(ordered["person_id"].astype(str), sort=False):
            start = None
            for _, r in history.iterrows():
                if r["outcome"] == "accepted" and start is None:
                    start = _episode_start(r)
                elif r["outcome"] == "closed" and start is not None:
                    rows.append((person_id, start, str(r["reviewed_on"])))
                    start = None
            if start is not None:
                rows.append((person_id, start, None))
    return pd.DataFrame(rows, columns=["person_id", "start", "end"])


def exclusion_sentence(key: str, since: str | None = None) -> str:
    """An exclusion in words, with the episode's date for `mdt_accepted` ("accepted onto the
    MDT caseload on 2026-08-20")."""
    words = EXCLUSIONS[key]
    return f"{words} on {since}" if key == "mdt_accepted" and since else words


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
    reviewed: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """For each person, one bool column per exclusion that applies under `rules` (all that
    apply). `opted_out` overrides whether opt-out excludes (default: unless direct care use);
    `caseloads` adds caseloads to those `rules` exclude; `reviewed` (`review_status`, same rows)
    adds the MDT's decisions."""
    flags: dict[str, np.ndarray] = {}
    if (not rules.direct_care_use) if opted_out is None else opted_out:
        flags["opted_out"] = _flag(features, OPT_OUT_COLUMN)
    excluded = set(rules.exclude_caseloads) | set(caseloads)
    for caseload in CASELOADS:
        if caseload in excluded:
            flags[f"caseload_{caseload}"] = _flag(features, caseload_column(caseload))
    if rules.exclude_care_home:
        flags["care_home"] = _flag(features, CARE_HOME_COLUMN)
    if reviewed is not None:
        for key in ("mdt_accepted", "mdt_reviewed"):
            flags[key] = reviewed[key].to_numpy(bool)
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


def modelled_population(
    panel: pd.DataFrame, settings: Settings, reviews: pd.DataFrame | None = None
) -> pd.Series:
    """True for panel rows in the population the model is trained and evaluated on; with
    `[training] exclude_after_mdt_acceptance` and `reviews` (the reviews table), rows whose
    index date falls in an accepted MDT episode (`accepted_from`) are left out."""
    keep = ~training_exclusions(panel, settings).any(axis=1)
    if settings.training.exclude_after_mdt_acceptance and reviews is not None and len(reviews):
        keep &= ~after_acceptance(panel, reviews)
    return keep


def after_acceptance(panel: pd.DataFrame, reviews: pd.DataFrame) -> pd.Series:
    """True for panel rows (person_id, index_date) dated after an MDT acceptance and before
    the episode closed: person-time whose outcome the intervention changes."""
    episodes = accepted_from(reviews)
    day = pd.to_datetime(panel["index_date"]).dt.date.astype(str)
    hit = pd.Series(False, index=panel.index)
    ids = panel["person_id"].astype(str)
    for e in episodes.itertuples():
        rows = (ids == e.person_id) & (day > e.start)
        if _text(e.end) is not None:
            rows &= day <= e.end
        hit |= rows
    return hit


def population_rules(settings: Settings) -> list[str]:
    """The modelled population's exclusions in words, for the model card ("not living in a care
    home", ...)."""
    words = [EXCLUSIONS[k] for k in training_exclusions(_no_rows(), settings).columns]
    words = [w if w.startswith("not ") else f"not {w}" for w in words]
    if settings.training.exclude_after_mdt_acceptance:
        words.append(AFTER_ACCEPTANCE)
    return words or ["with no further exclusions"]


# Liley J, et al. Model updating after interventions paradoxically introduces bias (AISTATS 2021;
# arXiv 2010.11530): an outcome the MDT's care changed is not the risk the model should learn.
AFTER_ACCEPTANCE = (
    "not inside an accepted MDT episode on the index date (person-time after an MDT acceptance, "
    "until the episode is closed, is left out: the intervention changes the outcome it would be "
    "labelled with; [training] exclude_after_mdt_acceptance)"
)


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
