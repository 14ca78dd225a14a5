"""The generator's latent monthly process: who is in which state, and what happens each month.

Each person has static traits (sex, deprivation quintile, a "use propensity" level) and a latent
monthly state: frailty level 0..5, social care state (none, home care, care home) and dementia
(no/yes). Everything that happens in a month, the counts of each kind of event and the moves
between states, depends only on the state at the start of the month, the traits and the 5-year age
band in that month. All of it is looked up in the `RateTables` built here, which the simulation
(`step`) and the exact oracle (`synthetic.oracle`) share, so the oracle is the true probability
under this process.

Order within a month (the oracle follows the same order):
1. events are counted from the state at the start of the month;
2. death and moving away (both from the old state);
3. social care moves (from the old frailty, dementia and care state);
4. frailty rises one level (from the old frailty and dementia);
5. dementia onset (from the *new* frailty level).

Rates are set so that the population matches published figures (see docs/synthetic.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BANDS = 8  # 60-64, 65-69, ..., 90-94, 95+
N_SEX = 2  # 0 male, 1 female
N_DEP = 5  # IMD quintile, 0 = most deprived
N_PROP = 3  # use propensity: low, middle, high
N_FRAIL = 6
N_CARE = 3  # 0 none, 1 home care (long-term community support), 2 care home
N_DEM = 2
SHAPE = (N_BANDS, N_SEX, N_DEP, N_PROP, N_FRAIL, N_CARE, N_DEM)
N_CELLS = int(np.prod(SHAPE))
BAND_LABELS = ("60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90-94", "95+")
PROPENSITY_SHARES = (0.3, 0.5, 0.2)
MOVE_AWAY_ANNUAL = 0.012  # deregistration by moving out of the area, per year

# Annual probability of death by 5-year band, England, approximately the mean of qx over each
# band in ONS National Life Tables, England, 2020-2022 (males, females).
DEATH_ANNUAL = np.array(
    [
        [0.0095, 0.0160, 0.0255, 0.0420, 0.0720, 0.1300, 0.2200, 0.3500],
        [0.0062, 0.0100, 0.0165, 0.0280, 0.0500, 0.0950, 0.1750, 0.3000],
    ]
)

# Events counted each month (Poisson, mean from the tables). Names match how they are written.
EVENTS = (
    "emergency_admission",
    "elective_admission",
    "ae_not_admitted",
    "outpatient",
    "district_nursing",
    "community_matron",
    "intermediate_care",
    "community_therapy",
    "falls_service",
    "palliative",
    "community_other",
    "mh_crisis",
    "mh_cmht",
    "mh_liaison",
    "mh_memory",
    "mh_other",
    "reablement",
    "sc_request",
    "carer_support",
    "frailty_review",
    "acute_medicine",
)


def _ax(values, axis: int) -> np.ndarray:
    """`values` as an array that broadcasts along `axis` of SHAPE."""
    a = np.asarray(values, dtype=float)
    shape = [1] * len(SHAPE)
    shape[axis] = a.size
    return a.reshape(shape)


def _dep(ratio: float) -> np.ndarray:
    """Deprivation gradient: `ratio` times higher in the most than the least deprived quintile."""
    return ratio ** _ax((4 - np.arange(N_DEP)) / 4, 2)


def _monthly(annual: np.ndarray) -> np.ndarray:
    """Monthly probability from an annual one (constant hazard)."""
    return 1.0 - (1.0 - np.clip(annual, 0.0, 0.999)) ** (1.0 / 12.0)


BAND, SEX, DEP, PROP, FRAIL, CARE, DEM = range(7)


@dataclass(frozen=True)
class RateTables:
    """Monthly event means and transition probabilities for every cell of SHAPE."""

    events: dict[str, np.ndarray]  # name -> monthly Poisson mean, shape SHAPE
    death: np.ndarray  # monthly probability
    move_away: float  # monthly probability
    to_home_care: np.ndarray  # care 0 -> 1
    to_care_home: np.ndarray  # care 0 -> 2 and 1 -> 2
    frailty_up: np.ndarray  # f -> f + 1 (0 at f = 5)
    dementia_onset: np.ndarray  # dem 0 -> 1 (0 at dem = 1)

    def flat(self, name: str) -> np.ndarray:
        return self.events[name].reshape(-1)


def initial_frailty_probs() -> np.ndarray:
    """P(frailty level) at the start of history, by age band (rows) — the cross-section."""
    return np.array(
        [
            [0.50, 0.24, 0.13, 0.08, 0.04, 0.01],
            [0.42, 0.25, 0.15, 0.10, 0.06, 0.02],
            [0.34, 0.25, 0.17, 0.13, 0.08, 0.03],
            [0.25, 0.23, 0.20, 0.16, 0.12, 0.04],
            [0.16, 0.19, 0.21, 0.21, 0.17, 0.06],
            [0.09, 0.14, 0.20, 0.24, 0.23, 0.10],
            [0.05, 0.10, 0.17, 0.24, 0.30, 0.14],
            [0.03, 0.07, 0.14, 0.24, 0.34, 0.18],
        ]
    )


# Dementia prevalence by band (Alzheimer's Society, Dementia UK update 2014: about 1.7% at 65-69
# rising to about 33% at 95+) and relative risk by frailty level.
DEMENTIA_PREVALENCE = np.array([0.006, 0.017, 0.030, 0.060, 0.110, 0.190, 0.290, 0.350])
DEMENTIA_FRAILTY_RR = np.array([0.25, 0.45, 0.8, 1.2, 2.0, 2.8])
# P(home care), P(care home) at the start of history by frailty level; dementia multiplies.
INITIAL_HOME_CARE = np.array([0.001, 0.0025, 0.007, 0.017, 0.042, 0.085])
INITIAL_CARE_HOME = np.array([0.000, 0.001, 0.002, 0.006, 0.026, 0.095])


def build_tables() -> RateTables:
    """The monthly rates of the process for every (band, sex, dep, prop, frailty, care, dem)."""
    ones = np.ones(SHAPE)
    age = _ax(np.arange(N_BANDS), BAND)
    prop = _ax([0.55, 1.0, 1.9], PROP)
    dem = _ax([0.0, 1.0], DEM)
    home = _ax([0.0, 1.0, 0.0], CARE)
    no_care = _ax([1.0, 0.0, 0.0], CARE)
    care_home = _ax([0.0, 0.0, 1.0], CARE)

    def rr(values, axis=FRAIL):
        return _ax(values, axis)

    ev: dict[str, np.ndarray] = {}
    # Annual means, divided by 12 below.
    ev["emergency_admission"] = (
        0.048
        * rr([1.0, 1.5, 2.4, 3.6, 5.8, 8.5])
        * 1.13**age
        * rr([1.0, 1.25, 1.0], CARE)
        * rr([1.0, 1.3], DEM)
        * prop
        * _dep(1.15)
    )
    ev["elective_admission"] = (
        0.10 * rr([0.8, 1.0, 1.2, 1.3, 1.1, 0.8]) * prop * (1 - 0.7 * care_home)
    )
    ev["ae_not_admitted"] = 0.12 * rr([1.0, 1.3, 1.8, 2.4, 3.2, 3.8]) * prop * _dep(1.3)
    ev["outpatient"] = (
        1.2 * rr([0.8, 1.0, 1.3, 1.6, 1.7, 1.5]) * prop**1.3 * (1 - 0.6 * care_home) * _dep(0.9)
    )
    ev["district_nursing"] = (
        rr([0.15, 0.35, 0.8, 1.8, 4.5, 9.0]) * rr([1.0, 1.8, 0.25], CARE) * prop**0.7
    )
    ev["community_matron"] = rr([0.0, 0.02, 0.1, 0.3, 1.2, 2.4]) * (1 - care_home) * prop**0.7
    ev["intermediate_care"] = (
        rr([0.006, 0.012, 0.032, 0.065, 0.15, 0.22]) * rr([1.0, 1.2, 0.3], CARE) * prop**0.7
    )
    ev["community_therapy"] = rr([0.1, 0.2, 0.5, 0.9, 1.5, 1.8]) * prop**0.7
    ev["falls_service"] = rr([0.01, 0.03, 0.08, 0.15, 0.3, 0.35]) * (1 - 0.5 * care_home)
    ev["palliative"] = rr([0.0, 0.0, 0.01, 0.03, 0.2, 1.2]) * ones
    ev["community_other"] = 0.3 * prop * ones
    ev["mh_crisis"] = rr([0.002, 0.003, 0.005, 0.008, 0.012, 0.015]) * (1 + 4 * dem) * _dep(1.5)
    ev["mh_cmht"] = rr([0.004, 0.006, 0.01, 0.015, 0.02, 0.02]) * (1 + 25 * dem) * prop**0.5
    ev["mh_liaison"] = 0.1 * ev["emergency_admission"] * (1 + 3 * dem)
    ev["mh_memory"] = (0.01 * rr([0.5, 1, 1, 1.5, 1.5, 1.5]) + 0.6 * dem) * (1 - care_home)
    ev["mh_other"] = 0.02 * prop * ones
    ev["reablement"] = rr([0.003, 0.006, 0.015, 0.035, 0.08, 0.10]) * (1 - care_home) * _dep(1.2)
    ev["sc_request"] = rr([0.01, 0.02, 0.05, 0.12, 0.25, 0.3]) * (1 - 0.7 * care_home) * _dep(1.2)
    ev["carer_support"] = 0.01 * (1 + 3 * dem) * (1 - care_home) * ones
    ev["frailty_review"] = rr([0.05, 0.5, 0.8, 1.0, 1.3, 1.6]) * ones
    ev["acute_medicine"] = rr([0.8, 1.2, 1.8, 2.4, 3.0, 3.4]) * prop**0.5 * ones
    events = {k: np.broadcast_to(v / 12.0, SHAPE).astype(np.float64).copy() for k, v in ev.items()}
    assert tuple(events) == EVENTS

    # Death: life table by band and sex, times relative risks normalised so that the mean relative
    # risk over the band's starting cross-section is one.
    f_rr = np.array([0.35, 0.55, 0.9, 1.35, 2.3, 4.2])
    care_rr = np.array([1.0, 1.4, 2.0])
    dem_rr = np.array([1.0, 1.7])
    norm = _mean_rr_by_band(f_rr, care_rr, dem_rr)
    death_annual = (
        0.85
        * DEATH_ANNUAL.T[:, :, None, None, None, None, None]
        / norm[:, None, None, None, None, None, None]
        * _ax(f_rr, FRAIL)
        * _ax(care_rr, CARE)
        * _ax(dem_rr, DEM)
    )
    death = _monthly(np.broadcast_to(death_annual, SHAPE))

    to_home = _monthly(
        rr([0.001, 0.0025, 0.006, 0.015, 0.035, 0.065])
        * (1 + 0.5 * dem)
        * _dep(1.3)
        * no_care
        * 1.05**age
        * ones
    )
    to_care_home_annual = (
        rr([0.0003, 0.001, 0.002, 0.005, 0.015, 0.045]) * (1 + 2 * dem) * no_care
        + rr([0.02, 0.03, 0.04, 0.06, 0.10, 0.16]) * (1 + 1.5 * dem) * home
    ) * 1.05**age
    to_care_home = _monthly(to_care_home_annual * ones)
    frailty_up = _monthly(
        rr([0.065, 0.10, 0.11, 0.12, 0.11, 0.0]) * 1.12**age * (1 + 0.5 * dem) * _dep(1.35) * ones
    )
    dementia_onset = _monthly(
        _ax([0.002, 0.004, 0.008, 0.016, 0.030, 0.050, 0.080, 0.100], BAND)
        * rr(DEMENTIA_FRAILTY_RR)
        * (1 - dem)
        * ones
    )
    return RateTables(
        events=events,
        death=death,
        move_away=float(_monthly(np.array(MOVE_AWAY_ANNUAL))),
        to_home_care=to_home,
        to_care_home=to_care_home,
        frailty_up=frailty_up,
        dementia_onset=dementia_onset,
    )


def _mean_rr_by_band(f_rr: np.ndarray, care_rr: np.ndarray, dem_rr: np.ndarray) -> np.ndarray:
    """Mean mortality relative risk per band over the starting cross-section."""
    pf = initial_frailty_probs()  # (band, f)
    p_dem = np.clip(DEMENTIA_PREVALENCE[:, None] * DEMENTIA_FRAILTY_RR[None, :], 0, 0.95)
    out = np.zeros(N_BANDS)
    for d in (0, 1):
        pd = p_dem if d else 1 - p_dem
        mult = 1.5 if d else 1.0
        ph = np.clip(INITIAL_HOME_CARE * mult, 0, 0.5)
        pc = np.clip(INITIAL_CARE_HOME * (2.5 if d else 1.0), 0, 0.5)
        pn = 1 - ph - pc
        rr_care = pn * care_rr[0] + ph * care_rr[1] + pc * care_rr[2]
        out += (pf * pd * rr_care[None, :] * f_rr[None, :]).sum(axis=1) * dem_rr[d]
    return out


def cell_index(band, sex, dep, prop, frail, care, dem) -> np.ndarray:
    """Flat index into a SHAPE table for arrays of coordinates."""
    return np.ravel_multi_index(
        (band, sex, dep, prop, frail, care, dem), SHAPE, mode="raise"
    ).astype(np.int64)


@dataclass
class MonthDraw:
    """What happened to each active person in one month."""

    counts: dict[str, np.ndarray]  # event name -> count per person
    died: np.ndarray  # bool
    moved: np.ndarray  # bool (moved away, not died)
    care_from: np.ndarray  # care state before the month's moves
    new_home_care: np.ndarray  # bool: care 0 -> 1
    new_care_home: np.ndarray  # bool: care 0/1 -> 2
    frailty_rose: np.ndarray  # bool
    dementia_began: np.ndarray  # bool


def step(
    rng: np.random.Generator,
    tables: RateTables,
    band: np.ndarray,
    sex: np.ndarray,
    dep: np.ndarray,
    prop: np.ndarray,
    frail: np.ndarray,
    care: np.ndarray,
    dem: np.ndarray,
) -> MonthDraw:
    """Draw one month for active people; updates `frail`, `care`, `dem` in place.

    People who die or move away keep their old state (they leave the simulation).
    """
    n = band.size
    idx = cell_index(band, sex, dep, prop, frail, care, dem)
    counts = {name: rng.poisson(tables.flat(name)[idx]).astype(np.int32) for name in EVENTS}
    u = rng.random((5, n))
    died = u[0] < tables.death.reshape(-1)[idx]
    moved = ~died & (u[1] < tables.move_away)
    stays = ~(died | moved)
    care_from = care.copy()
    p_ch = tables.to_care_home.reshape(-1)[idx]
    to_ch = stays & (u[2] < p_ch)
    to_hc = stays & ~to_ch & (u[2] < p_ch + tables.to_home_care.reshape(-1)[idx])
    frail_up = stays & (u[3] < tables.frailty_up.reshape(-1)[idx])
    care[to_ch] = 2
    care[to_hc] = 1
    frail[frail_up] += 1
    idx2 = cell_index(band, sex, dep, prop, frail, care_from, dem)
    dem_on = stays & (u[4] < tables.dementia_onset.reshape(-1)[idx2])
    dem[dem_on] = 1
    return MonthDraw(
        counts=counts,
        died=died,
        moved=moved,
        care_from=care_from,
        new_home_care=to_hc,
        new_care_home=to_ch,
        frailty_rose=frail_up,
        dementia_began=dem_on,
    )
