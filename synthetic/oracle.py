"""The exact probability of the contract's default outcome under the generator's own process.

Default outcome (docs/linked-records.md): in the 12 months from index date D, two or more
agencies involved, or a long-term residential/nursing service start. Agencies: acute (an
emergency admission), community (any intermediate care contact, or 6+ district nursing /
community matron contacts), adult social care (a service start of long_term_community,
long_term_residential, long_term_nursing, short_term_reablement or direct_payment), mental health
(a crisis or older adult CMHT contact).

Given a person's state at D (the first day of a month), the future depends only on the key
(age band at D, months until the band changes, sex, deprivation, propensity, frailty, care,
dementia). A forward dynamic program over 12 months tracks, for every latent state, the
probability of each "outcome not yet reached" situation: which single agency (if any) is involved
so far and the district nursing + matron count so far (0..5). Mass that reaches the outcome is
added up as it gets there; mass that dies or moves away is dropped. The result is exact (floating
point only), and `simulate_outcome` re-simulates the same process by Monte Carlo to check it.

In the process, a home care start is a `long_term_community` or `direct_payment` service start
(social care agency), a care home move starts a residential or nursing service (the outcome),
and reablement starts count for social care.
"""

from __future__ import annotations

import numpy as np

from synthetic.process import (
    N_BANDS,
    N_CARE,
    N_DEM,
    N_FRAIL,
    RateTables,
    step,
)

WINDOW_MONTHS = 12
DN_THRESHOLD = 6
KEY_COLUMNS = ("band", "band_change", "sex", "dep", "prop", "frail", "care", "dem")
NONE, ACUTE, SOCIAL, MENTAL = range(4)  # single agency so far (community kept apart)


def band_path(band: np.ndarray, band_change: np.ndarray) -> np.ndarray:
    """Age band in each of the 12 window months: (K, 12). band_change 12 means no change."""
    months = np.arange(WINDOW_MONTHS)[None, :]
    return np.minimum(band[:, None] + (months >= band_change[:, None]), N_BANDS - 1)


def outcome_probability(tables: RateTables, keys: np.ndarray) -> np.ndarray:
    """P(default outcome in the 12-month window) for each row of `keys` (K, 8) int array."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1, len(KEY_COLUMNS))
    context_shape = (N_BANDS, WINDOW_MONTHS + 1, 2, 5, 3)
    code = np.ravel_multi_index(tuple(keys[:, :5].T), context_shape)
    unique, which = np.unique(code, return_inverse=True)
    contexts = np.stack(np.unravel_index(unique, context_shape), axis=1)
    value = _backward(tables, contexts)  # (G, frail, care, dem)
    return value[which.reshape(-1), keys[:, 5], keys[:, 6], keys[:, 7]]


def _gather(table: np.ndarray, band: np.ndarray, sex, dep, prop) -> np.ndarray:
    """Rates for every latent state of each context: (G, frail, care, dem)."""
    return table[band, sex, dep, prop]


def _backward(tables: RateTables, contexts: np.ndarray) -> np.ndarray:
    """Backward recursion over the window for every latent starting state of each context.

    `v[g, f, c, d, agency, count]` is the probability of reaching the outcome from the start of
    month j in latent state (f, c, d) with that agency so far and that DN/matron count, outcome
    not yet reached; `vz[g, f, c, d]` the same with community the only agency so far.
    """
    band, change, sex, dep, prop = contexts.T
    bands = band_path(band, change)
    g_n = len(contexts)
    v = np.zeros((g_n, N_FRAIL, N_CARE, N_DEM, 4, DN_THRESHOLD))
    vz = np.zeros((g_n, N_FRAIL, N_CARE, N_DEM))
    ev = tables.events
    for j in reversed(range(WINDOW_MONTHS)):
        b = bands[:, j]

        def g(t, b=b):
            return _gather(t, b, sex, dep, prop)

        # 5. dementia onset, from the frailty level after this month's rise
        p_dem = g(tables.dementia_onset)[..., 0]  # (G, f, c)
        v[..., 0, :, :] += p_dem[..., None, None] * (v[..., 1, :, :] - v[..., 0, :, :])
        vz[..., 0] += p_dem * (vz[..., 1] - vz[..., 0])
        # 4. frailty rises one level (old dementia)
        p_up = g(tables.frailty_up)
        up_v = np.concatenate([v[:, 1:], v[:, -1:]], axis=1)
        up_z = np.concatenate([vz[:, 1:], vz[:, -1:]], axis=1)
        v = v + p_up[..., None, None] * (up_v - v)
        vz = vz + p_up * (up_z - vz)
        # 3. social care moves: care home start is the outcome; home care start is social care
        p_ch = g(tables.to_care_home)
        p_hc = g(tables.to_home_care)
        after_hc = np.ones_like(v)
        after_hc[..., NONE, :] = v[:, :, 1:2, :, SOCIAL, :]
        after_hc[..., SOCIAL, :] = v[:, :, 1:2, :, SOCIAL, :]
        stay = 1.0 - p_ch - p_hc
        v = p_ch[..., None, None] + p_hc[..., None, None] * after_hc + stay[..., None, None] * v
        vz = p_ch + p_hc + stay * vz
        # 2. death and moving away
        alive = (1.0 - g(tables.death)) * (1.0 - tables.move_away)
        v = v * alive[..., None, None]
        vz = vz * alive
        # 1. events from the state at the start of the month, undone in reverse order
        for agency, p in (
            (MENTAL, 1.0 - np.exp(-(g(ev["mh_crisis"]) + g(ev["mh_cmht"])))),
            (SOCIAL, 1.0 - np.exp(-g(ev["reablement"]))),
            (ACUTE, 1.0 - np.exp(-g(ev["emergency_admission"]))),
        ):
            pv = p[..., None]
            new = v + pv[..., None] * (1.0 - v)  # another agency involved: outcome reached
            new[..., agency, :] = v[..., agency, :]
            new[..., NONE, :] = v[..., NONE, :] + pv * (v[..., agency, :] - v[..., NONE, :])
            v = new
            vz = vz + p * (1.0 - vz)
        p_ic = 1.0 - np.exp(-g(ev["intermediate_care"]))
        lam = g(ev["district_nursing"]) + g(ev["community_matron"])
        pmf = np.empty((*lam.shape, DN_THRESHOLD))
        term = np.exp(-lam)
        for n in range(DN_THRESHOLD):
            pmf[..., n] = term
            term = term * lam / (n + 1)
        cdf = np.cumsum(pmf, axis=-1)
        flag = np.ones(v.shape[:-1])  # value once community is involved, by agency so far
        flag[..., NONE] = vz
        keep = (1.0 - p_ic)[..., None]
        new = np.empty_like(v)
        for n in range(DN_THRESHOLD):
            reach = (1.0 - cdf[..., DN_THRESHOLD - 1 - n])[..., None]
            acc = reach * flag
            for n2 in range(n, DN_THRESHOLD):
                acc = acc + pmf[..., n2 - n][..., None] * v[..., n2]
            new[..., n] = p_ic[..., None] * flag + keep * acc
        v = new
    return v[..., NONE, 0]


def simulate_outcome(
    tables: RateTables, key: tuple[int, ...], n: int, rng: np.random.Generator
) -> float:
    """Monte-Carlo share of `n` copies of `key` reaching the outcome, using `process.step`."""
    band, change = int(key[0]), int(key[1])
    bands = band_path(np.array([band]), np.array([change]))[0]
    st = {
        name: np.full(n, v, dtype=np.int8)
        for name, v in zip(("sex", "dep", "prop", "frail", "care", "dem"), key[2:], strict=True)
    }
    active = np.ones(n, dtype=bool)
    acute = np.zeros(n, bool)
    social = np.zeros(n, bool)
    mental = np.zeros(n, bool)
    community = np.zeros(n, bool)
    dn = np.zeros(n, np.int64)
    placed = np.zeros(n, bool)
    for j in range(WINDOW_MONTHS):
        ids = np.flatnonzero(active)
        sub = {k: v[ids] for k, v in st.items()}
        draw = step(rng, tables, np.full(ids.size, bands[j], np.int8), **sub)
        for k in ("frail", "care", "dem"):
            st[k][ids] = sub[k]
        c = draw.counts
        acute[ids] |= c["emergency_admission"] > 0
        community[ids] |= c["intermediate_care"] > 0
        dn[ids] += c["district_nursing"] + c["community_matron"]
        social[ids] |= (c["reablement"] > 0) | draw.new_home_care
        mental[ids] |= (c["mh_crisis"] + c["mh_cmht"]) > 0
        placed[ids] |= draw.new_care_home
        active[ids[draw.died | draw.moved]] = False
    community |= dn >= DN_THRESHOLD
    agencies = acute.astype(int) + community + social + mental
    return float(np.mean((agencies >= 2) | placed))
