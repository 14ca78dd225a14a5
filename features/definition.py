"""What a feature is: one definition drives the feature table, the dictionary, the explanations
and the pages.

Every feature in `features.registry.FEATURES` is a `Feature`. The features stage fills in how it is
computed; explanations and pages only read `name`, `domain`, `concept`, `description`, `window`,
`kind`, `labels`, `model_input`, `adjustable` and `phrase(value)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

Domain = Literal[
    "demographics",
    "place",
    "hospital use",
    "primary care and frailty",
    "prescribing",
    "community health",
    "social care",
    "mental health",
    "caseload",
]
DOMAINS: tuple[Domain, ...] = get_args(Domain)

# count: whole number of things; flag: 0/1; number: a measured amount (score, hours);
# days_since: days since the last event, missing when there was none; code: integer category code.
Kind = Literal["count", "flag", "number", "days_since", "code"]


@dataclass(frozen=True)
class Feature:
    """One person-level feature at an index date.

    `sentence` is a template for the plain-language reason, with `{value}` (formatted per `kind`),
    `{s}` (plural ending: "" when the value is 1, else "s") and, for codes, `{label}`.
    `none_sentence` is used when the value is zero, false or missing ("no emergency admissions in
    the last 12 months"), so a reason never claims an event that did not happen.
    """

    name: str
    domain: Domain
    description: str
    sentence: str
    none_sentence: str
    kind: Kind
    # Contract table(s) read, e.g. "hospital_spells": set by `features.registry` from the block
    # (never written by hand), for derived features from the features they read.
    source: str
    window: str | None = None  # e.g. "12 months"; None for current state or whole history
    labels: dict[int, str] = field(default_factory=dict)  # for `code` features
    model_input: bool = True  # False: kept for eligibility and list rules only
    adjustable: bool = False  # a clinician may change it in a what-if
    # The clinical concept it is one view of ("emergency admissions" for the 3-, 6-, 12- and
    # 36-month counts and the days since the last one): a reason is a concept, its features'
    # contributions summed, worded by its most telling feature. Empty: the feature is its own.
    concept: str = ""
    # A short form for a reason worded by another feature of the concept, e.g. "{value}
    # emergency admission{s} in 3 years" makes "3 emergency admissions in the last 12 months (5
    # emergency admissions in 3 years)". It must read on its own. Empty: none.
    brief: str = ""
    # For `code` features: the code meaning "nothing recorded" (worded by `none_sentence`).
    none_code: int | None = None
    # How it is computed (owned by the features stage): a SQL expression or query fragment.
    sql: str = ""
    # The SQL block that computes it (features/blocks.py): a per-person aggregate over one
    # table's rows ("spells", "gp", ...), "people" for the person row, or "derived", "derived2"
    # or "derived3" for an expression over other features (each level reads the ones before).
    block: str = ""
    # The value for a person with no rows in the block (None: missing).
    fill: float | None = None

    @property
    def concept_name(self) -> str:
        """The concept this feature is a view of (its own name when it stands alone)."""
        return self.concept or self.name

    def is_none(self, value: object) -> bool:
        """True when the value means "nothing recorded" (zero, false, missing, or the code for
        none)."""
        if value is None:
            return True
        if isinstance(value, float) and math.isnan(value):
            return True
        if self.kind in ("count", "flag", "number"):
            return float(value) == 0.0
        if self.kind == "code" and self.none_code is not None:
            return float(value) == float(self.none_code)
        return False

    def format_value(self, value: object) -> str:
        """The value as a person would write it; days since an event read as days up to 8
        weeks, then months up to 2 years, then years ("about 4 years")."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        if self.kind == "code":
            return self.labels.get(int(value), str(value))
        number = float(value)
        if self.kind == "days_since":
            return _elapsed(number)
        if self.kind in ("count", "flag") or number.is_integer():
            return f"{number:,.0f}"
        return f"{number:,.2f}".rstrip("0").rstrip(".")

    def phrase(self, value: object, template: str | None = None) -> str:
        """The plain-language sentence for this value, e.g. "3 emergency admissions in the last
        12 months" (`template`: another template of the same fields, e.g. `brief`)."""
        if self.is_none(value):
            return self.none_sentence
        shown = self.format_value(value)
        label = self.labels.get(int(value), shown) if self.kind == "code" else shown
        plural = "" if self.kind != "code" and float(value) == 1.0 else "s"
        return (template or self.sentence).format(value=shown, label=label, s=plural)


def _elapsed(days: float) -> str:
    """Days as a clinician says them: "12 days", "3 months", "about 4 years"."""
    # Average month 30.44 days, year 365.25 days (Gregorian calendar averages).
    if days < 56:
        whole = round(days)
        return f"{whole:,.0f} day{'' if whole == 1 else 's'}"
    if days < 730:
        months = round(days / 30.44)
        return f"{months} months"
    years = round(days / 365.25)
    return f"about {years} years"
