"""The synthetic place: neighbourhoods, GP practices, LSOAs with IMD deciles, and who lives where.

Eight neighbourhoods, each with its own deprivation level and ethnic mix, several practices and
many LSOAs. Age and sex at the start of history follow England's population aged 60 and over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

# name, mean IMD decile of its LSOAs (1 = most deprived), ethnic diversity (0..1)
NEIGHBOURHOODS = (
    ("Northgate", 2.5, 0.9),
    ("Riverside", 3.5, 0.7),
    ("Eastfield", 4.5, 0.5),
    ("Castleton", 5.5, 0.4),
    ("Hillcrest", 6.5, 0.3),
    ("Westbrook", 7.0, 0.25),
    ("Oakwood", 8.0, 0.15),
    ("Southmead", 8.5, 0.1),
)
PRACTICES_PER_NEIGHBOURHOOD = (3, 6)  # inclusive range

# NHS ethnic category codes and the share of people aged 65+ in England, Census 2021 (ONS,
# TS021 by age; rounded). Diversity scales the non-White-British share.
ETHNIC_CODES = ("A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S")
ETHNIC_SHARES = np.array(
    [0.865, 0.012, 0.035, 0.002, 0.001, 0.002, 0.002, 0.022, 0.010, 0.003, 0.008, 0.013, 0.006,
     0.002, 0.004, 0.006]
)  # fmt: skip
NOT_STATED_SHARE = 0.015  # "Z"
NOT_KNOWN_SHARE = 0.012  # "99"

# Population of England by 5-year age band at 60+ (thousands) and the female share: ONS mid-2021
# population estimates (rounded). Bands: 60-64, 65-69, 70-74, 75-79, 80-84, 85-89, 90-94, 95-104.
AGE_BAND_POPULATION = np.array([3270, 2800, 2760, 2040, 1390, 830, 380, 110], dtype=float)
FEMALE_SHARE = np.array([0.51, 0.515, 0.525, 0.54, 0.565, 0.605, 0.67, 0.77])


@dataclass(frozen=True)
class Place:
    """LSOAs (code, IMD decile, neighbourhood index) and practices (code, neighbourhood index)."""

    lsoa_codes: np.ndarray
    lsoa_imd: np.ndarray
    lsoa_hood: np.ndarray
    practice_codes: np.ndarray
    practice_hood: np.ndarray
    hood_names: tuple[str, ...]
    hood_diversity: np.ndarray


def build_place(rng: np.random.Generator, people: int) -> Place:
    """A place sized for `people`: about one LSOA per 300 people aged 60+."""
    n_hood = len(NEIGHBOURHOODS)
    n_lsoa = int(np.clip(people // 300, 4 * n_hood, 6000))
    lsoa_hood = np.sort(rng.integers(0, n_hood, n_lsoa))
    lsoa_hood[:n_hood] = np.arange(n_hood)  # every neighbourhood has LSOAs
    lsoa_hood = np.sort(lsoa_hood)
    means = np.array([h[1] for h in NEIGHBOURHOODS])
    imd = np.clip(np.rint(rng.normal(means[lsoa_hood], 1.6)), 1, 10).astype(np.int8)
    numbers = rng.choice(np.arange(1, 35_000), size=n_lsoa, replace=False)
    lsoa_codes = np.array([f"E01{n:06d}" for n in np.sort(numbers)])
    sizes = rng.integers(PRACTICES_PER_NEIGHBOURHOOD[0], PRACTICES_PER_NEIGHBOURHOOD[1] + 1, n_hood)
    practice_hood = np.repeat(np.arange(n_hood), sizes)
    numbers = rng.choice(np.arange(1, 1000), size=practice_hood.size, replace=False)
    practice_codes = np.array([f"P88{n:03d}" for n in np.sort(numbers)])
    return Place(
        lsoa_codes=lsoa_codes,
        lsoa_imd=imd,
        lsoa_hood=lsoa_hood,
        practice_codes=practice_codes,
        practice_hood=practice_hood,
        hood_names=tuple(h[0] for h in NEIGHBOURHOODS),
        hood_diversity=np.array([h[2] for h in NEIGHBOURHOODS]),
    )


def assign_homes(rng: np.random.Generator, place: Place, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each person's LSOA and practice (a practice in the LSOA's neighbourhood)."""
    lsoa = rng.integers(0, place.lsoa_codes.size, n)
    hood = place.lsoa_hood[lsoa]
    practice = np.empty(n, dtype=np.int64)
    for h in range(len(place.hood_names)):
        members = np.flatnonzero(hood == h)
        options = np.flatnonzero(place.practice_hood == h)
        weights = 0.5 + np.arange(options.size, dtype=float)  # practices differ in list size
        practice[members] = rng.choice(options, size=members.size, p=weights / weights.sum())
    return lsoa, practice


def ethnicity(rng: np.random.Generator, diversity: np.ndarray) -> np.ndarray:
    """NHS ethnic category per person, more diverse where `diversity` is higher."""
    n = diversity.size
    other = ETHNIC_SHARES[1:] / ETHNIC_SHARES[1:].sum()
    other_share = (1 - ETHNIC_SHARES[0]) * (0.4 + 1.6 * diversity)
    u = rng.random(n)
    out = np.full(n, "A", dtype=object)
    pick = rng.choice(np.arange(1, len(ETHNIC_CODES)), size=n, p=other)
    is_other = u < other_share
    out[is_other] = np.array(ETHNIC_CODES, dtype=object)[pick[is_other]]
    v = rng.random(n)
    out[v < NOT_STATED_SHARE] = "Z"
    out[(v >= NOT_STATED_SHARE) & (v < NOT_STATED_SHARE + NOT_KNOWN_SHARE)] = "99"
    return out


def birth_dates(rng: np.random.Generator, n: int, start: date) -> tuple[np.ndarray, np.ndarray]:
    """Birth dates (days since 1970-01-01) and sex (0 male, 1 female), ages 60+ at `start`."""
    shares = AGE_BAND_POPULATION / AGE_BAND_POPULATION.sum()
    band = rng.choice(shares.size, size=n, p=shares)
    sex = (rng.random(n) < FEMALE_SHARE[band]).astype(np.int8)
    years_in_band = rng.random(n) * 5
    oldest = band == shares.size - 1  # 95+: numbers fall steeply with age
    years_in_band[oldest] = np.minimum(rng.exponential(2.5, oldest.sum()), 9.9)
    age_days = ((60 + 5 * band + years_in_band) * 365.25).astype(np.int64)
    start_day = (start - date(1970, 1, 1)).days
    return start_day - age_days, sex
