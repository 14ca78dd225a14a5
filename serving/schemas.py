"""Request and response bodies of the service, as pydantic models (they make the OpenAPI schema).

`FeatureRow` is built from the feature definitions, so the schema of a row to score lists every
model input with its kind's bounds: counts whole and ≥ 0, flags 0/1, codes one of their labels,
numbers and days-since ≥ 0 or null (missing / never). Every model forbids unknown fields and keeps
input values out of error messages (no health data in errors or logs).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from features.cohort import LIST_FLAGS, NOT_APPROPRIATE_REASONS, REVIEW_OUTCOMES
from features.dates import MONTH_PATTERN
from features.definition import Feature
from records.contract import NEIGHBOURHOOD, PERSON_ID

STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True)
# `YYYY-MM` as `features.dates.Month` checks it (the backend turns it into a `Month`).
MonthText = Annotated[str, Field(pattern=f"^(?:{MONTH_PATTERN})$", examples=["2026-10"])]
# The contract's patterns (records.contract): whatever the loader accepts can be asked for.
Neighbourhood = Annotated[str, Field(min_length=1, max_length=64, pattern=f"^(?:{NEIGHBOURHOOD})$")]
PERSON_ID_PATTERN = f"^(?:{PERSON_ID})$"
PersonId = Annotated[str, Field(pattern=PERSON_ID_PATTERN)]
# The list flags' keys (features.cohort.LIST_FLAGS), as the schema's enum.
FlagName = Literal[tuple(LIST_FLAGS)]  # type: ignore[valid-type]
# Upper bounds only to keep nonsense out; far above anything a record can hold.
COUNT_MAX = 100_000
NUMBER_MAX = 1e9


def _field(feature: Feature) -> tuple[Any, Any]:
    text = feature.description
    if feature.kind == "count":
        return int, Field(ge=0, le=COUNT_MAX, description=text)
    if feature.kind == "flag":
        return Literal[0, 1], Field(description=text)
    if feature.kind == "code":
        codes = tuple(sorted(feature.labels))
        labels = ", ".join(f"{k} = {v}" for k, v in sorted(feature.labels.items()))
        kind = Literal[codes] if codes else int  # type: ignore[valid-type]
        return kind, Field(description=f"{text} ({labels})")
    # number and days_since: missing (None) is allowed and means "not recorded" / "never".
    return float | None, Field(
        ge=0, le=NUMBER_MAX, allow_inf_nan=False, description=text, default=None
    )


def feature_row_model(features: Iterable[Feature]) -> type[BaseModel]:
    """The pydantic model of one row of model inputs."""
    fields = {f.name: _field(f) for f in features}
    return create_model("FeatureRow", __config__=STRICT, **fields)  # type: ignore[call-overload]


def _registry_row_model() -> type[BaseModel]:
    from features import model_feature_names
    from models.reasons import feature_map

    names = model_feature_names()
    return feature_row_model(feature_map(None, names).values())


FeatureRow = _registry_row_model()


class Strict(BaseModel):
    model_config = STRICT


class Reason(Strict):
    """One concept's part in a score (its features' parts summed), worded by its most telling
    feature: a plain sentence and its size in probability points."""

    concept: str
    feature: str = Field(description="The feature that words the reason")
    domain: str
    sentence: str
    value: float | None = Field(description="The wording feature's value (null: not recorded)")
    probability_change: float = Field(
        description="Part of (score − reference_probability), 0.031 = 3.1 points"
    )
    note: str | None = Field(
        default=None, description="Why it goes against the population's usual direction"
    )


class ScoredRow(Strict):
    """The score of one feature row."""

    probability: float
    band: str
    reference_probability: float = Field(
        description="What the reasons start from: the latest scored month's mean served "
        "probability (else the rows' own mean); reference + reasons + other = probability"
    )
    reference: str = Field(description="Who the reference is, in words")
    raising: list[Reason]
    lowering: list[Reason]
    other_probability_change: float
    model_version: str


ModelRef = Annotated[
    str,
    Field(
        pattern=r"^([0-9]{1,6}|[A-Za-z][A-Za-z0-9_-]{0,31})$",
        description="A registered version number or alias",
        examples=["champion", "3"],
    ),
]


class ModelScoreResponse(Strict):
    """Rows scored with a chosen registered model (data scientists)."""

    model_version: str = Field(description="The model the service loaded at start-up")
    scored_with: str = Field(description="The version the rows were scored with")
    results: list[ScoredRow]


def score_requests(max_rows: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """The bodies of /score and /score_model: 1 to `max_rows` feature rows (and a model)."""
    rows = Annotated[list[FeatureRow], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    score = create_model("ScoreRequest", __config__=STRICT, rows=(rows, ...))
    chosen = create_model(
        "ScoreModelRequest", __config__=STRICT, model=(ModelRef, ...), rows=(rows, ...)
    )
    return score, chosen


class ListRequest(Strict):
    neighbourhood: Neighbourhood
    month: MonthText | None = Field(default=None, description="Default: the latest scored month")
    flag: FlagName | None = Field(default=None, description="Only people with this flag")


class ListedPerson(Strict):
    person_id: str
    rank: int
    probability: float
    band: str
    flags: list[str]
    reasons: list[Reason]
    reference_probability: float | None = Field(
        default=None, description="The run's mean served probability, where the reasons start"
    )
    other_probability_change: float | None = Field(
        default=None,
        description="Everything but the reasons shown: reference + reasons + other = probability",
    )


CHAMPION_NOTE = (
    "Null when the month's run was scored with the champion now loaded; else what the team "
    "should know (the scores and reasons shown are the run's model's)"
)


class ListResponse(Strict):
    model_version: str
    run_model_version: str = Field(description="The model version the monthly run used")
    champion_note: str | None = Field(default=None, description=CHAMPION_NOTE)
    run_id: str
    month: str
    index_date: str = Field(description="The date the data describe")
    neighbourhood: str
    people: list[ListedPerson]


class PersonRequest(Strict):
    person_id: PersonId
    month: MonthText | None = None
    include_chart: bool = Field(default=False, description="Inline the waterfall chart (SVG)")


class Movement(Strict):
    feature: str
    sentence: str
    probability_change: float


class Change(Strict):
    """How the score moved since last month's run."""

    previous_month: str
    status: Literal["both", "new", "gone"]
    previous_probability: float | None
    probability_change: float | None
    previous_band: str | None
    movements: list[Movement]


# --- MDT reviews (features.cohort.REVIEW_OUTCOMES) ------------------------------------------

ReviewOutcome = Literal[tuple(REVIEW_OUTCOMES)]  # type: ignore[valid-type]
ReviewReason = Literal[tuple(NOT_APPROPRIATE_REASONS)]  # type: ignore[valid-type]
NOTE_MAX = 500
# Free text a team types: printable, no line breaks or control characters.
PlainText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ReviewRequest(Strict):
    """The MDT's decision for a person listed in a month (team and clinicians of their
    neighbourhood). Fields by outcome: accepted (care_coordinator?, care_plan_started?),
    not_appropriate (reason), already_known (care_coordinator: the service or team), deferred
    (review_month); note (at most 500 characters) with any."""

    person_id: PersonId
    month: MonthText = Field(description="The month's list the person was reviewed from")
    outcome: ReviewOutcome
    care_coordinator: PlainText | None = Field(
        default=None, description="Care co-ordinator's role or team (accepted, already_known)"
    )
    care_plan_started: date | None = Field(default=None, description="accepted only")
    reason: ReviewReason | None = Field(default=None, description="not_appropriate only")
    review_month: MonthText | None = Field(default=None, description="deferred only: when")
    note: str | None = Field(
        default=None, max_length=NOTE_MAX, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
    )


class Review(Strict):
    """One stored review."""

    id: int
    person_id: str
    month: str
    neighbourhood: str
    outcome: str
    outcome_words: str
    care_coordinator: str | None
    care_plan_started: str | None
    reason: str | None
    review_month: str | None
    note: str | None
    probability: float | None = Field(description="The person's probability in `month`'s run")
    reviewed_on: str
    user: str
    created: str


class ReviewsRequest(Strict):
    neighbourhood: Neighbourhood
    month: MonthText | None = Field(default=None, description="Only reviews of this month's list")


class ReviewsResponse(Strict):
    neighbourhood: str
    month: str | None
    reviews: list[Review] = Field(description="Newest first")


class ExcludedBecause(Strict):
    key: str
    sentence: str


class PersonResponse(Strict):
    model_version: str
    run_model_version: str = Field(description="The model version that scored and explains this")
    champion_note: str | None = Field(default=None, description=CHAMPION_NOTE)
    month: str
    index_date: str
    person_id: str
    neighbourhood: str
    gp_practice_code: str | None = Field(default=None, description="To match the GP record")
    age: int | None = Field(default=None, description="Age in whole years on the index date")
    probability: float
    band: str
    rank: int | None
    listed: bool
    flags: list[str]
    reference_probability: float = Field(
        description="Mean served probability of everyone scored in the run: where the reasons "
        "start; reference + raising + lowering + other = probability"
    )
    reference: str = Field(description="Who the reference is, in words")
    raising: list[Reason]
    lowering: list[Reason]
    other_probability_change: float
    not_listed: str | None = Field(
        default=None, description="Why the person is not on the list, in words (null if listed)"
    )
    change: Change | None = Field(description="Null when last month was not scored")
    chart_url: str
    chart_alt: str = Field(description="The chart in words: every step from the reference")
    chart_svg: str | None = None
    excluded_because: ExcludedBecause | None = Field(
        default=None, description="Null when not excluded from the list, else the key and words"
    )
    reviews: list[Review] = Field(default_factory=list, description="MDT reviews, newest first")


FEATURE_NAME_MAX = 64


def _feature_names_only(value: Any) -> Any:
    """Refuse change keys that cannot be feature names before they are validated one by one, so
    that no error (or log line) repeats a client's key."""
    if isinstance(value, dict):
        for key in value:
            if not (
                isinstance(key, str)
                and 0 < len(key) <= FEATURE_NAME_MAX
                and key.isascii()
                and key.replace("_", "").isalnum()
            ):
                raise ValueError(
                    f"change keys are feature names (letters, digits and _, at most "
                    f"{FEATURE_NAME_MAX} characters)"
                )
    return value


class WhatIfRequest(Strict):
    person_id: PersonId
    month: MonthText | None = None
    changes: Annotated[dict[str, float | None], BeforeValidator(_feature_names_only)] = Field(
        min_length=1, max_length=50, description="Adjustable feature -> new value (null: never)"
    )


class Scored(Strict):
    probability: float
    band: str


class WhatIfResponse(Strict):
    model_version: str
    month: str
    person_id: str
    before: Scored
    after: Scored
    probability_change: float
    changed: dict[str, dict[str, float | None]] = Field(
        description="Every input that moved: the roots you changed and what follows from them"
    )
    derived: list[str] = Field(description="Inputs re-derived from the ones you changed")
    warnings: list[str] = Field(description="Inputs the outcome itself counts, in words")
    caveat: str = Field(description="What a what-if shows and does not")
    movements: list[Movement]
    raising_after: list[Reason]


class SummaryRequest(Strict):
    month: MonthText | None = None


# A count in an aggregate output: a number, or "<5" (small-number suppression,
# scoring/disclosure.py) or "suppressed" (secondary suppression).
Count = int | str


class NeighbourhoodSummary(Strict):
    neighbourhood: str
    eligible: Count
    scored: Count
    listed: Count
    bands: dict[str, Count]


class ListPerformance(Strict):
    """How a neighbourhood's list of the month is doing (scoring.performance)."""

    neighbourhood: str
    listed: Count
    reviewed: Count
    accepted: Count
    share_accepted: float | None = Field(
        description="Accepted / reviewed: team-judged PPV (null when either count is suppressed)"
    )
    median_days_to_review: float | None


class SummaryResponse(Strict):
    model_version: str
    run_model_version: str
    champion_note: str | None = Field(default=None, description=CHAMPION_NOTE)
    run_id: str
    month: str
    index_date: str
    suppress_below: int = Field(description="Counts from 1 to this less one are shown as <N")
    neighbourhoods: list[NeighbourhoodSummary]
    performance: list[ListPerformance] = Field(
        default_factory=list, description="How each neighbourhood's list is doing"
    )


class Status(Strict):
    model_name: str
    model_version: str
    model_loaded_at: str
    registry: Literal["reachable", "unreachable"]
    registry_detail: str
    months: list[str]
    replaced: list[str] = Field(
        default_factory=list,
        description="Champions this service loaded and then replaced when the registry's alias "
        "moved (months scored with them keep their own model's scores until scored again)",
    )


# --- population segments (features.segments) -----------------------------------------------

SegmentName = Literal["in_the_system", "high_risk_independent", "fit_and_well"]


class SegmentsRequest(Strict):
    month: MonthText | None = Field(default=None, description="Default: the latest scored month")
    neighbourhood: Neighbourhood | None = Field(
        default=None,
        description="Person-level rows for this neighbourhood (team and clinician users there)",
    )
    segment: SegmentName | None = Field(default=None, description="Only people in this segment")
    rising_risk: bool = Field(default=False, description="Only the rising-risk group")


class SegmentCounts(Strict):
    neighbourhood: str
    people: Count
    segments: dict[str, Count]
    rising_risk: Count
    moved: Count


class SegmentFlow(Strict):
    neighbourhood: str
    from_segment: str
    to_segment: str
    people: Count
    sentence: str


class SegmentPerson(Strict):
    person_id: str
    neighbourhood: str
    gp_practice_code: str
    segment: str
    segment_reason: str
    probability: float
    band: str
    previous_segment: str | None = None
    moved_segment: bool = False
    rising_risk: bool = False


class SegmentsResponse(Strict):
    model_version: str
    run_model_version: str
    champion_note: str | None = Field(default=None, description=CHAMPION_NOTE)
    run_id: str
    month: str
    index_date: str
    suppress_below: int = Field(description="Counts from 1 to this less one are shown as <N")
    segment_words: dict[str, str]
    neighbourhoods: list[SegmentCounts]
    flows: list[SegmentFlow]
    people: list[SegmentPerson] | None = None
