"""Words for explanations: which feature definition describes a model input, how a change in a
feature reads, and which what-if values are allowed.

Every sentence comes from the feature's own definition (`Feature.phrase`, `none_sentence`,
`description`), so a feature is worded the same in lists, pages and the service.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from features.definition import Feature

FeatureDefs = Mapping[str, Feature] | Iterable[Feature] | None


def feature_map(features: FeatureDefs, names: Iterable[str]) -> dict[str, Feature]:
    """The definitions of `names` by name; `features` defaults to the features registry.

    Raise naming any model input that has no definition, so no reason is ever worded by guesswork.
    """
    if features is None:
        from features import FEATURES  # the registry; imported lazily so tests can pass their own

        features = FEATURES
    by_name = dict(features) if isinstance(features, Mapping) else {f.name: f for f in features}
    names = list(names)
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"no feature definition for model input(s): {', '.join(missing)}")
    return {n: by_name[n] for n in names}


def clean_value(value: object) -> float | None:
    """A feature value as plain JSON: a float, or None when missing."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def phrase(feature: Feature, value: object, template: str | None = None) -> str:
    """`Feature.phrase(value)` (or with another `template` of the feature, e.g. its `brief`),
    with whole-number codes passed as integers (so an unlabelled code reads "3", not "3.0")."""
    if feature.kind == "code" and isinstance(value, float) and value.is_integer():
        value = int(value)
    return feature.phrase(value, template)


def format_points(probability_change: float) -> str:
    """A probability change as signed percentage points, e.g. "+3.1 points"."""
    points = 100.0 * probability_change
    shown = f"{abs(points):.1f}"
    if shown == "0.0":
        return "0.0 points"
    return f"{'+' if points > 0 else '−'}{shown} points"


_VALUE_FIRST = "{value} "


def _noun(feature: Feature) -> str | None:
    """What a "{value} ..." sentence counts, e.g. "falls recorded in the last 12 months"."""
    if feature.sentence.startswith(_VALUE_FIRST):
        return feature.sentence[len(_VALUE_FIRST) :].format(value="", label="", s="s")
    return None


def _collapse(before: str, after: str) -> str:
    """ "a b c → a b d" written "a b c → d": the words both sentences start with, once."""
    b, a = before.split(), after.split()
    k = 0
    while k < min(len(b), len(a)) - 1 and b[k] == a[k]:
        k += 1
    if k == 0:
        return f"{before} → {after}"
    return f"{' '.join(b)} → {' '.join(a[k:])}"


def change_sentence(feature: Feature, before: object, after: object) -> str:
    """How a feature moved between two values, built from its sentences.

    "falls recorded in the last 12 months: 0 → 2" (counts and amounts), "new: lives alone" /
    "no longer: lives alone" (a flag, code or last-event date that was absent / is now),
    "aged 85 → 86", "long-term social care: home care → nursing care", or, when the value did
    not change but its weight did, the current phrase marked "(unchanged)".
    """
    was_none, now_none = feature.is_none(before), feature.is_none(after)
    b, a = clean_value(before), clean_value(after)
    if b == a or (was_none and now_none and feature.kind not in ("count", "number")):
        return f"{phrase(feature, after)} (unchanged; weighs differently alongside other changes)"
    noun = _noun(feature)
    if feature.kind in ("count", "number") and noun is not None:
        shown_b = "0" if b is None and feature.fill == 0.0 else feature.format_value(b)
        shown_a = "0" if a is None and feature.fill == 0.0 else feature.format_value(a)
        return f"{noun}: {shown_b} → {shown_a}"
    if feature.kind in ("flag", "code", "days_since") and was_none:
        return f"new: {phrase(feature, after)}"
    if feature.kind in ("flag", "code", "days_since") and now_none:
        return f"no longer: {phrase(feature, before)}"
    said_before, said_after = phrase(feature, before), phrase(feature, after)
    if said_before == said_after:  # e.g. 12 and 13 days read alike
        return f"{said_after} (unchanged in words; weighs differently)"
    return _collapse(said_before, said_after)


def check_what_if_value(feature: Feature, value: object) -> float:
    """The what-if value as a float, or raise naming the feature and what is allowed."""
    name = feature.name
    if value is None:
        if feature.kind == "days_since":
            return math.nan  # "never happened"
        raise ValueError(f"what-if value for {name!r} is missing; give a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"what-if value for {name!r} is not a number: {value!r}") from None
    if math.isnan(number):
        if feature.kind == "days_since":
            return number
        raise ValueError(f"what-if value for {name!r} is missing; give a number")
    if math.isinf(number):
        raise ValueError(f"what-if value for {name!r} must be finite")
    if feature.kind == "flag" and number not in (0.0, 1.0):
        raise ValueError(f"what-if value for {name!r} must be 0 or 1 (a flag), got {value!r}")
    if feature.kind == "count" and (number < 0 or not number.is_integer()):
        raise ValueError(f"what-if value for {name!r} must be a whole number ≥ 0, got {value!r}")
    if feature.kind in ("number", "days_since") and number < 0:
        raise ValueError(f"what-if value for {name!r} must be ≥ 0, got {value!r}")
    if feature.kind == "code" and (not number.is_integer() or int(number) not in feature.labels):
        allowed = ", ".join(f"{k} ({v})" for k, v in sorted(feature.labels.items()))
        raise ValueError(f"what-if value for {name!r} must be one of: {allowed}; got {value!r}")
    return number
