"""What a feature is: one definition drives the feature table, the dictionary, the explanations
and the pages.

Every feature in `features.registry.FEATURES` is a `Feature`. The features stage fills in how it is
computed; explanations and pages only read `name`, `domain`, `description`, `window`, `kind`,
`labels`, `model_input`, `adjustable` and `phrase(value)`.
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
    # How it is computed (owned by the features stage): a SQL expression or query fragment.
    sql: str = ""
    # The SQL block that computes it (features/blocks.py): a per-person aggregate over one
    # table's rows ("spells", "gp", ...), "people" for the person row, or "derived"/"derived2"
    # for an expression over other features.
    block: str = ""
    # The value for a person with no rows in the block (None: missing).
    fill: float | None = None

    def is_none(self, value: object) -> bool:
        """True when the value means "nothing recorded" (zero, false or missing)."""
        if value is None:
            return True
        if isinstance(value, float) and math.isnan(value):
            return True
        if self.kind in ("count", "flag", "number"):
            return float(value) == 0.0
        return False

    def format_value(self, value: object) -> str:
        """The value as a person would write it."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        if self.kind == "code":
            return self.labels.get(int(value), str(value))
        number = float(value)
        if self.kind in ("count", "flag", "days_since") or number.is_integer():
            return f"{number:,.0f}"
        return f"{number:,.2f}".rstrip("0").rstrip(".")

    def phrase(self, value: object) -> str:
        """The plain-language sentence for this value, e.g. "3 emergency admissions in the last
        12 months"."""
        if self.is_none(value):
            return self.none_sentence
        shown = self.format_value(value)
        label = self.labels.get(int(value), shown) if self.kind == "code" else shown
        plural = "" if self.kind != "code" and float(value) == 1.0 else "s"
        return self.sentence.format(value=shown, label=label, s=plural)
