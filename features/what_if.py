"""What a what-if may change, and what follows from it, read off the one feature definitions.

A clinician sets *root* inputs only (`Feature.adjustable`: the number of medicines, falls, social
care hours, ...). Every feature computed from other features (the polypharmacy flags from the
number of medicines, the eFI deficits, score, band and change, the count of high-risk medicine
groups, the long-term service flag) is then re-derived by running its own SQL definition
(`features.registry`, the query `features.build` runs) over the person's changed row in DuckDB, so
the what-if can never score "0 medicines" with "10 or more medicines = yes".

A run stores model inputs, not the block helpers that derived features read; those are rebuilt
from the stored inputs by inverting their definitions (`HELPERS`). A test re-derives every stored
row of a real run and gets the stored values back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config.settings import OutcomeSettings
from features.blocks import DERIVED, bnf_group_bit
from features.codelists import bnf_groups, efi_bit
from features.definition import Feature
from features.registry import EFI_DEFICITS, EFI_POLYPHARMACY, FEATURES

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BY_NAME = {f.name: f for f in FEATURES}

# Block helpers rebuilt from stored model inputs: (SQL over features, the features it reads).
# efi_mask: each coded deficit's flag is `(efi_mask & bit) <> 0`, so the mask is the sum of the
# flags' bits; a fall in the last 12 months (`falls_12m`) is a coded falls deficit too.
_EFI_CODED = [d for d in EFI_DEFICITS if d != "polypharmacy"]
_FALLS_BIT = efi_bit("falls")
HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "efi_mask": (
        "("
        + " + ".join(
            f"CASE WHEN efi_{d} = 1 THEN {efi_bit(d)} ELSE 0 END"
            for d in _EFI_CODED
            if d != "falls"
        )
        + f" + CASE WHEN efi_falls = 1 OR falls_12m > 0 THEN {_FALLS_BIT} ELSE 0 END)",
        (*(f"efi_{d}" for d in _EFI_CODED), "falls_12m"),
    ),
    # rx_<group>_3m is `(rx_group_mask & bit) <> 0`: the mask is the sum of the groups' bits.
    "rx_group_mask": (
        "(" + " + ".join(f"{bnf_group_bit(g)} * rx_{g}_3m" for g in bnf_groups()) + ")",
        tuple(f"rx_{g}_3m" for g in bnf_groups()),
    ),
    # Only `in_care_home` reads it, and that is not a model input.
    "last_discharge_care_home": ("0", ()),
}
# Features the what-if keeps as stored because they describe the past, not the person now:
# the eFI deficits 12 months ago (efi_change_12m = (deficits now - these) / 36).
KEPT: dict[str, str] = {
    "efi_deficits_12m_ago": "round(36 * (efi_score - efi_change_12m))",
}


def _reads(f: Feature) -> set[str]:
    return set(_IDENTIFIER.findall(f.sql))


def _recomputed(features: Iterable[Feature] = FEATURES) -> list[Feature]:
    """The derived features, in evaluation order, that a what-if recomputes."""
    return [
        f
        for level in DERIVED
        for f in features
        if f.block == level and f.name not in KEPT and f.name != "in_care_home"
    ]


def dependents(features: Iterable[Feature] = FEATURES) -> set[str]:
    """Features a what-if re-derives from others (never set by hand): derived features that read
    another feature, or a helper rebuilt from features other than themselves."""
    names = {f.name for f in FEATURES}
    out = set()
    for f in _recomputed(features):
        read = _reads(f)
        from_features = read & names
        from_helpers = {h for h in read & set(HELPERS) if f.name not in HELPERS[h][1]}
        if from_features or from_helpers:
            out.add(f.name)
    return out


def roots(features: Iterable[Feature] = FEATURES) -> list[Feature]:
    """The model inputs a clinician may set in a what-if."""
    return [f for f in features if f.adjustable and f.model_input]


_clash = {f.name for f in roots()} & dependents()
if _clash:
    raise RuntimeError(f"adjustable features derived from others: {sorted(_clash)}")


# --- impossible combinations ---------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A combination of root values that no record could produce, with the words saying why."""

    features: tuple[str, ...]
    sql: str  # true when the combination is impossible
    message: str


_RX_FLAGS = " OR ".join(f"rx_{g}_3m = 1" for g in bnf_groups())
RULES = (
    Rule(
        ("bnf_sections_3m", "distinct_medicines_3m"),
        "bnf_sections_3m > distinct_medicines_3m",
        "medicines from more BNF sections than there are medicines",
    ),
    Rule(
        ("distinct_medicines_3m", *(f"rx_{g}_3m" for g in bnf_groups())),
        f"distinct_medicines_3m = 0 AND ({_RX_FLAGS})",
        "a high-risk medicine prescribed, but no medicines in the last 3 months",
    ),
    Rule(
        ("distinct_medicines_3m", "bnf_sections_3m"),
        "distinct_medicines_3m > 0 AND bnf_sections_3m = 0",
        "medicines issued, but from no BNF section",
    ),
    Rule(
        ("care_hours_per_week",),
        "care_hours_per_week > 168",  # hours in a week
        "more hours of social care than a week has (168)",
    ),
)


# --- re-derivation --------------------------------------------------------------------------


def _literal(value: float | None) -> str:
    if value is None or value != value:  # NaN
        return "CAST(NULL AS DOUBLE)"
    return repr(float(value))


def rederive(
    row: Mapping[str, float | None], changes: Mapping[str, float | None]
) -> tuple[dict[str, float | None], list[str]]:
    """(the person's model inputs with `changes` applied to root inputs and every dependent
    re-derived from its definition, the dependents whose value changed). ValueError naming the
    problem when a change is not to a root input or makes an impossible combination."""
    import duckdb

    allowed = {f.name for f in roots()}
    wrong = [n for n in changes if n not in allowed]
    if wrong:
        raise ValueError(
            f"only root inputs can be changed in a what-if; {', '.join(sorted(wrong))} "
            "follow from others"
        )
    names = [f.name for f in FEATURES if f.model_input]
    values = {n: row.get(n) for n in names}
    values.update(changes)
    con = duckdb.connect()
    try:
        base = ", ".join(f"{_literal(values[n])} AS {n}" for n in names)
        kept = ", ".join(f"{sql} AS {name}" for name, sql in KEPT.items())
        helpers = ", ".join(f"CAST({sql} AS BIGINT) AS {h}" for h, (sql, _) in HELPERS.items())
        ctes = [f"x0 AS (SELECT {base})", f"x1 AS (SELECT *, {kept}, {helpers} FROM x0)"]
        checks = ", ".join(f"coalesce({r.sql}, FALSE)" for r in RULES)
        flagged = con.execute(f"WITH {', '.join(ctes)} SELECT {checks} FROM x1").fetchone()
        bad = [r.message for r, hit in zip(RULES, flagged or (), strict=True) if hit]
        if bad:
            raise ValueError("impossible combination: " + "; ".join(bad))
        previous = "x1"
        for k, level in enumerate(DERIVED):
            exprs = ", ".join(f"{f.sql} AS {f.name}" for f in _recomputed() if f.block == level)
            if exprs:  # every recomputed feature is a model input: a column already
                ctes.append(f"d{k} AS (SELECT * REPLACE ({exprs}) FROM {previous})")
                previous = f"d{k}"
        (result,) = con.execute(
            f"WITH {', '.join(ctes)} SELECT [{', '.join(names)}] FROM {previous}"
        ).fetchone()
    finally:
        con.close()
    after = {n: (None if v is None else float(v)) for n, v in zip(names, result, strict=True)}
    moved = [n for n in names if n not in changes and not _same(row.get(n), after[n])]
    return after, moved


def _same(a: float | None, b: float | None) -> bool:
    a_missing = a is None or a != a
    b_missing = b is None or b != b
    if a_missing or b_missing:
        return a_missing and b_missing
    return abs(float(a) - float(b)) <= 1e-12


# --- part of the outcome --------------------------------------------------------------------


def outcome_warnings(changed: Iterable[str], outcome: OutcomeSettings | None = None) -> list[str]:
    """For each changed input recorded in a table the outcome counts (`OutcomeSettings`), why its
    effect on the estimate is partly by definition."""
    outcome = outcome or OutcomeSettings()
    counted: dict[str, list[str]] = {}  # table -> what the outcome counts from it, in words
    for agency, rules in outcome.agencies.items():
        for rule in rules:
            counted.setdefault(rule.table, []).append(f"{agency.replace('_', ' ')} involvement")
    for rule in outcome.always_counts:
        counted.setdefault(rule.table, []).append(
            f"{rule.table.replace('_', ' ')} records outright"
        )
    out = []
    for name in changed:
        f = _BY_NAME[name]
        words = list(dict.fromkeys(w for t in f.source.split(", ") for w in counted.get(t, [])))
        if words:
            out.append(
                f"{f.description.rstrip('.')}: part of what the model predicts (the outcome "
                f"counts {' and '.join(words)}, from the same records), so the estimate moves "
                "with it by definition, not because care changed"
            )
    return out


__all__ = ["EFI_POLYPHARMACY", "HELPERS", "RULES", "dependents", "outcome_warnings", "rederive",
           "roots"]  # fmt: skip
