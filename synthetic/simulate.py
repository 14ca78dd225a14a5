"""Run the latent process month by month over the whole population and write what it records.

Loops over months, never over people: each month every active person's events and moves are
drawn at once (`process.step`), then turned into rows. Records describe the latent state: eFI
deficits are coded as frailty rises, the Clinical Frailty Scale is recorded at reviews with a value
for the current level, repeat medicines grow with frailty, and use rates rise with frailty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from records.contract import SOCIAL_CARE_EVENTS, SOCIAL_CARE_SERVICES
from synthetic import codes
from synthetic.config import SynthConfig
from synthetic.oracle import KEY_COLUMNS
from synthetic.places import Place, assign_homes, birth_dates, build_place, ethnicity
from synthetic.process import (
    DEMENTIA_FRAILTY_RR,
    DEMENTIA_PREVALENCE,
    INITIAL_CARE_HOME,
    INITIAL_HOME_CARE,
    N_BANDS,
    PROPENSITY_SHARES,
    RateTables,
    initial_frailty_probs,
    step,
)
from synthetic.rows import Rows

EPOCH = date(1970, 1, 1)
LATE_REGISTRATION_SHARE = 0.03  # registered during the history (moved into the area)
OPT_OUT_SHARE = 0.035  # national data opt-out among older people, roughly (NHS Digital 2023)
# Deficits coded and repeat medicines by frailty level (plus a personal offset of -1, 0 or +1).
DEFICITS_BY_LEVEL = np.array([1, 3, 5, 6, 9, 12])
MEDICINES_BY_LEVEL = np.array([0, 2, 3, 5, 7, 9])
CFS_BY_LEVEL = np.array([2, 3, 4, 5, 6, 7])
AMBULANCE_BY_LEVEL = np.array([0.3, 0.4, 0.5, 0.6, 0.7, 0.75])
HFRS_CODES_BY_LEVEL = np.array([0.1, 0.3, 0.7, 1.2, 1.8, 2.5])  # mean extra HFRS codes per spell
FRAILTY_PRIMARY_BY_LEVEL = np.array([0.1, 0.2, 0.35, 0.5, 0.6, 0.7])
MAX_SLOTS = 16

COMMUNITY_EVENTS = {
    "district_nursing": "district_nursing",
    "community_matron": "community_matron",
    "intermediate_care": "intermediate_care",
    "community_therapy": "community_therapy",
    "falls_service": "falls",
    "palliative": "palliative",
    "community_other": "other",
}
MH_EVENTS = {
    "mh_crisis": "crisis",
    "mh_cmht": "older_adult_cmht",
    "mh_liaison": "liaison",
    "mh_memory": "memory_service",
    "mh_other": "other",
}
SC_EVENTS = SOCIAL_CARE_EVENTS
SC_SERVICES = SOCIAL_CARE_SERVICES  # written by index: 0 long_term_community ... 5 carer_support


class Vocabulary:
    """Strings stored as small integer codes while generating."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, value: str) -> int:
        if value not in self._index:
            self._index[value] = len(self.values)
            self.values.append(value)
        return self._index[value]

    def many(self, values) -> np.ndarray:
        return np.array([self(v) for v in values], dtype=np.int32)


@dataclass
class Population:
    """Per-person arrays (static traits, current latent state, registration, death)."""

    n: int
    birth_day: np.ndarray
    birth_month: np.ndarray  # month index from which the age in years counts (see age_years)
    sex: np.ndarray
    dep: np.ndarray
    prop: np.ndarray
    frail: np.ndarray
    care: np.ndarray
    dem: np.ndarray
    lsoa: np.ndarray
    practice: np.ndarray
    ethnic: np.ndarray
    late: np.ndarray
    reg_start: np.ndarray  # day number
    opt_out: np.ndarray
    deficit_order: np.ndarray  # (n, n_deficits) deficit indices in coding order
    deficit_offset: np.ndarray
    medicine_order: np.ndarray  # (n, MAX_SLOTS) medicine vocabulary codes
    medicine_offset: np.ndarray
    phase: np.ndarray  # repeat prescribing month phase 0..2
    issue_day: np.ndarray  # day of month repeat prescriptions are issued
    dementia_drug: np.ndarray
    antipsychotic: np.ndarray
    weight: np.ndarray
    height: np.ndarray
    gone_day: np.ndarray = field(default=None)  # death or moving away; -1 while present
    died: np.ndarray = field(default=None)
    home_care_day: np.ndarray = field(default=None)
    home_care_dp: np.ndarray = field(default=None)
    care_home_day: np.ndarray = field(default=None)
    nursing: np.ndarray = field(default=None)


def day_number(d: date) -> int:
    return (d - EPOCH).days


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def month_start(index: int) -> int:
    return day_number(date(index // 12, index % 12 + 1, 1))


def age_years(pop: Population, month: int) -> np.ndarray:
    """Completed years of age on the first day of month index `month`."""
    return (month - pop.birth_month) // 12


def band_of(age: np.ndarray) -> np.ndarray:
    return np.clip((age - 60) // 5, 0, N_BANDS - 1).astype(np.int8)


class Simulation:
    """One run: population, month loop, rows per table, oracle keys."""

    def __init__(self, config: SynthConfig, tables: RateTables, rng: np.random.Generator):
        self.config = config
        self.tables = tables
        self.rng = rng
        self.vocab = Vocabulary()
        self.first_month = month_index(config.start)
        self.n_months = config.months()
        self.end_day = day_number(config.end)
        self.deficit_names = sorted(codes.deficit_codes())
        self.random_deficits = np.array(
            [i for i, d in enumerate(self.deficit_names) if d != codes.MEMORY_DEFICIT]
        )
        self.gp = Rows("pid", "day", "code", "value")
        self.rx = Rows("pid", "day", "code", "quantity")
        self.spells = Rows("pid", "day", "los", "elective", "method", "primary", "frail", "dest")
        self.ae = Rows("pid", "day", "ambulance", "admitted")
        self.op = Rows("pid", "day", "attendance", "specialty")
        self.community = Rows("pid", "day", "service")
        self.sc = Rows("pid", "event", "day", "end", "service", "hours")
        self.mh = Rows("pid", "day", "team")
        self.caseloads = Rows("pid", "caseload", "day", "end")
        self.oracle = Rows("pid", "month", *KEY_COLUMNS)
        self.place: Place | None = None
        self.pop: Population | None = None

    # ------------------------------------------------------------------ population

    def make_population(self) -> Population:
        rng, cfg = self.rng, self.config
        n = cfg.people
        self.place = place = build_place(rng, n)
        lsoa, practice = assign_homes(rng, place, n)
        hood = place.lsoa_hood[lsoa]
        eth = ethnicity(rng, place.hood_diversity[hood])
        birth_day, sex = birth_dates(rng, n, cfg.start)
        bd = np.datetime64("1970-01-01") + birth_day.astype("timedelta64[D]")
        months = bd.astype("datetime64[M]")
        dom = (bd - months.astype("datetime64[D]")).astype(np.int64) + 1
        birth_month = months.astype(np.int64) + 1970 * 12 + (dom > 1)
        dep = ((place.lsoa_imd[lsoa] - 1) // 2).astype(np.int8)
        prop = rng.choice(3, size=n, p=PROPENSITY_SHARES).astype(np.int8)
        band = band_of(age_years_from(birth_month, self.first_month))
        # frailty: the band's cross-section, shifted up in more deprived areas
        cum = np.cumsum(initial_frailty_probs(), axis=1)[band]
        tilt = 1.3 ** ((4 - dep) / 4 - 0.5)
        u = rng.random(n) ** (1 / tilt)
        frail = (u[:, None] > cum[:, :-1]).sum(axis=1).astype(np.int8)
        p_dem = np.clip(DEMENTIA_PREVALENCE[band] * DEMENTIA_FRAILTY_RR[frail], 0, 0.95)
        dem = (rng.random(n) < p_dem).astype(np.int8)
        p_home = np.clip(INITIAL_HOME_CARE[frail] * np.where(dem == 1, 1.5, 1.0), 0, 0.5)
        p_ch = np.clip(INITIAL_CARE_HOME[frail] * np.where(dem == 1, 2.5, 1.0), 0, 0.5)
        v = rng.random(n)
        care = np.where(v < p_ch, 2, np.where(v < p_ch + p_home, 1, 0)).astype(np.int8)

        start_day = day_number(cfg.start)
        late = rng.random(n) < LATE_REGISTRATION_SHARE
        adult = birth_day + int(20 * 365.25)
        earliest = np.maximum(adult, day_number(date(1965, 1, 1)))
        reg_start = earliest + (rng.random(n) * (start_day - 1 - earliest)).astype(np.int64)
        late_span = max(self.end_day - 90 - start_day, 1)
        reg_start[late] = start_day + 1 + rng.integers(0, late_span, late.sum())

        weights = np.array([codes.DEFICIT_WEIGHTS.get(self.deficit_names[i], 1.0)
                            for i in self.random_deficits])  # fmt: skip
        keys = rng.exponential(size=(n, self.random_deficits.size)) / weights
        deficit_order = self.random_deficits[np.argsort(keys, axis=1)].astype(np.int8)
        med_codes = self.vocab.many([c for c, _ in codes.REPEAT_MEDICINES])
        med_w = np.array([w for _, w in codes.REPEAT_MEDICINES])
        keys = rng.exponential(size=(n, med_codes.size)) / med_w
        medicine_order = med_codes[np.argsort(keys, axis=1)[:, :MAX_SLOTS]]
        self.pop = Population(
            n=n,
            birth_day=birth_day,
            birth_month=birth_month,
            sex=sex,
            dep=dep,
            prop=prop,
            frail=frail,
            care=care,
            dem=dem,
            lsoa=lsoa,
            practice=practice,
            ethnic=eth,
            late=late,
            reg_start=reg_start,
            opt_out=rng.random(n) < OPT_OUT_SHARE,
            deficit_order=deficit_order,
            deficit_offset=rng.integers(-1, 2, n).astype(np.int8),
            medicine_order=medicine_order,
            medicine_offset=rng.integers(-1, 2, n).astype(np.int8),
            phase=rng.integers(0, 3, n).astype(np.int8),
            issue_day=rng.integers(0, 28, n),
            dementia_drug=rng.random(n) < 0.7,
            antipsychotic=rng.random(n) < 0.15,
            weight=np.where(sex == 1, rng.normal(68, 12, n), rng.normal(81, 12, n)),
            height=np.where(sex == 1, rng.normal(1.61, 0.06, n), rng.normal(1.74, 0.07, n)),
            gone_day=np.full(n, -1, dtype=np.int64),
            died=np.zeros(n, dtype=bool),
            home_care_day=np.full(n, -1, dtype=np.int64),
            home_care_dp=rng.random(n) < 0.15,
            care_home_day=np.full(n, -1, dtype=np.int64),
            nursing=np.zeros(n, dtype=bool),
        )
        self._prevalent()
        return self.pop

    def n_deficits(self, ids: np.ndarray, frail: np.ndarray) -> np.ndarray:
        k = DEFICITS_BY_LEVEL[frail] + self.pop.deficit_offset[ids]
        return np.clip(k, 0, self.random_deficits.size)

    def n_medicines(self, ids: np.ndarray, frail: np.ndarray) -> np.ndarray:
        k = MEDICINES_BY_LEVEL[frail] + self.pop.medicine_offset[ids]
        return np.clip(k, 0, MAX_SLOTS)

    # ------------------------------------------------------------------ GP coding helpers

    def _deficit_rows(self, ids: np.ndarray, k_from: np.ndarray, k_to: np.ndarray, day):
        """Code deficits number k_from..k_to-1 of each person's order.

        `day` is one day per person, or a function giving one day per row.
        """
        counts = np.maximum(k_to - k_from, 0)
        pid = np.repeat(ids, counts)
        if pid.size == 0:
            return
        first = np.repeat(k_from, counts)
        offsets = np.arange(pid.size) - np.repeat(np.cumsum(counts) - counts, counts)
        deficit = self.pop.deficit_order[pid, first + offsets]
        table = self._deficit_code_table()
        n_codes = table[1][deficit]
        pick = (self.rng.random(pid.size) * n_codes).astype(np.int64)
        code = table[0][deficit, pick]
        days = day(pid) if callable(day) else np.repeat(day, counts)
        self.gp.add(pid=pid, day=days, code=code, value=np.full(pid.size, np.nan))

    def _deficit_code_table(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_dct"):
            names = self.deficit_names
            table = np.zeros((len(names), 4), dtype=np.int32)
            sizes = np.zeros(len(names), dtype=np.int64)
            for i, name in enumerate(names):
                cs = codes.deficit_codes()[name]
                sizes[i] = len(cs)
                table[i, : len(cs)] = self.vocab.many(cs)
            self._dct = (table, sizes)
        return self._dct

    def _cfs_rows(self, ids: np.ndarray, day: np.ndarray) -> None:
        pop = self.pop
        f = pop.frail[ids]
        noise = self.rng.choice([-1, 0, 1], size=ids.size, p=[0.1, 0.8, 0.1])
        value = np.clip(CFS_BY_LEVEL[f] + (pop.care[ids] == 2) + noise, 1, 9).astype(float)
        weight = np.round(pop.weight[ids] - 2.0 * np.maximum(f - 3, 0), 1)
        bmi = np.round(weight / pop.height[ids] ** 2, 1)
        for code, val in ((codes.CFS, value), (codes.WEIGHT, weight), (codes.BMI, bmi)):
            self.gp.add(pid=ids, day=day, code=np.full(ids.size, self.vocab(code)), value=val)

    # ------------------------------------------------------------------ before the history

    def _prevalent(self) -> None:
        """Records from before the history start: the GP record, ongoing services, caseloads."""
        pop, rng = self.pop, self.rng
        start = day_number(self.config.start)
        ids = np.arange(pop.n)
        earliest = np.minimum(pop.birth_day + int(45 * 365.25), start - 400)

        def past(span_days: float, subset: np.ndarray) -> np.ndarray:
            lo = np.maximum(start - int(span_days), earliest[subset])
            return lo + (rng.random(subset.size) * (start - 1 - lo)).astype(np.int64)

        k = self.n_deficits(ids, pop.frail)
        self._deficit_rows(ids, np.zeros_like(k), k, lambda pid: past(3650, pid))
        for snomed, prevalence, _ in codes.OTHER_CONDITIONS:
            has = np.flatnonzero(rng.random(pop.n) < prevalence)
            self.gp.add(pid=has, day=past(3650, has), code=np.full(has.size, self.vocab(snomed)),
                        value=np.full(has.size, np.nan))  # fmt: skip
        frail_coded = np.flatnonzero((pop.frail >= 2) & (rng.random(pop.n) < 0.6))
        level = np.where(
            pop.frail[frail_coded] >= 5, 5, np.where(pop.frail[frail_coded] >= 4, 4, 2)
        )
        code = np.array([self.vocab(codes.FRAILTY_CODES[x]) for x in (2, 4, 5)])[
            np.searchsorted([2, 4, 5], level)
        ]
        self.gp.add(pid=frail_coded, day=past(730, frail_coded), code=code,
                    value=np.full(frail_coded.size, np.nan))  # fmt: skip
        reviewed = np.flatnonzero((pop.frail >= 1) & (rng.random(pop.n) < 0.6))
        self._cfs_rows(reviewed, past(365, reviewed))
        demented = np.flatnonzero(pop.dem == 1)
        self._dementia_codes(demented, past(1800, demented))

        home = np.flatnonzero(pop.care == 1)
        pop.home_care_day[home] = past(1460, home)
        in_home = np.flatnonzero(pop.care == 2)
        pop.care_home_day[in_home] = past(1460, in_home)
        pop.nursing[in_home] = rng.random(in_home.size) < np.where(
            pop.frail[in_home] >= 4, 0.5, 0.2
        )
        self._caseload_starts(np.flatnonzero(pop.frail >= 4), 4, past, prevalent=True)
        self._caseload_starts(np.flatnonzero(pop.frail >= 5), 5, past, prevalent=True)
        ch = in_home[rng.random(in_home.size) < 0.8]
        self.caseloads.add(pid=ch, caseload=np.full(ch.size, 3), day=past(365, ch),
                           end=np.full(ch.size, -1))  # fmt: skip

    def _dementia_codes(self, ids: np.ndarray, day: np.ndarray) -> None:
        alz = self.rng.random(ids.size) < 0.4
        code = np.where(
            alz, self.vocab(codes.DEMENTIA_CODES[1]), self.vocab(codes.DEMENTIA_CODES[0])
        )
        self.gp.add(pid=ids, day=day, code=code, value=np.full(ids.size, np.nan))

    def _caseload_starts(self, ids: np.ndarray, level: int, day, prevalent: bool = False):
        """Caseload entries when frailty reaches `level` (4: MDT, matron; 5: end of life)."""
        rng = self.rng
        picks = ((0, 0.4), (2, 0.3)) if level == 4 else ((1, 0.35),)
        for caseload, p in picks:
            who = rng.random(ids.size) < p
            sub = ids[who]
            days = day(365, sub) if prevalent else day[who]
            end = np.where((caseload == 0) & (rng.random(sub.size) < 0.3), days + 365, -1).astype(
                np.int64
            )
            self.caseloads.add(pid=sub, caseload=np.full(sub.size, caseload), day=days, end=end)

    # ------------------------------------------------------------------ the month loop

    def run(self, progress: Callable[[str, float], None]) -> None:
        pop, rng, cfg = self.pop, self.rng, self.config
        oracle_months = {month_index(d) for d in cfg.index_dates()}
        active = np.ones(pop.n, dtype=bool)
        for t in range(self.n_months):
            month = self.first_month + t
            ms = month_start(month)
            nd = month_start(month + 1) - ms
            age = age_years(pop, month)
            band = band_of(age)
            registered = pop.reg_start <= ms
            if month in oracle_months:
                self._snapshot(month, np.flatnonzero(active & registered & (age >= 65)), age)
            ids = np.flatnonzero(active)
            f0 = pop.frail[ids].copy()
            sub = {k: getattr(pop, k)[ids] for k in ("sex", "dep", "prop", "frail", "care", "dem")}
            draw = step(rng, self.tables, band[ids], **sub)
            # late registrants are not yet here: no death or moving before they register
            gone = (draw.died | draw.moved) & ~(pop.late[ids] & ~registered[ids])
            keep = ~gone
            for k in ("frail", "care", "dem"):
                getattr(pop, k)[ids] = np.where(keep, sub[k], getattr(pop, k)[ids])
            gone_ids = ids[gone]
            gone_day = np.full(ids.size, ms + nd - 1, dtype=np.int64)
            gone_day[gone] = ms + rng.integers(0, nd, gone.sum())
            pop.gone_day[gone_ids] = gone_day[gone]
            pop.died[ids[draw.died & gone]] = True
            active[gone_ids] = False
            self._emit_month(ids, draw, f0, keep, ms, nd, gone_day, month)
            progress("synthetic: simulate months", (t + 1) / self.n_months)

    def _snapshot(self, month: int, ids: np.ndarray, age: np.ndarray) -> None:
        pop = self.pop
        a = age[ids]
        band = band_of(a)
        until = 12 - ((month - pop.birth_month[ids]) % 12)  # months until the next birthday
        new_age = a + 1
        crosses = (until <= 11) & (new_age % 5 == 0) & (new_age >= 65) & (new_age <= 95)
        change = np.where(crosses, until, 12)
        self.oracle.add(pid=ids, month=np.full(ids.size, month), band=band, band_change=change,
                        sex=pop.sex[ids], dep=pop.dep[ids], prop=pop.prop[ids],
                        frail=pop.frail[ids], care=pop.care[ids], dem=pop.dem[ids])  # fmt: skip

    def _days(self, ids_rows: np.ndarray, local: np.ndarray, ms: int, nd: int, gone_by_row):
        """Random days in the month for rows, never after the person's leaving day."""
        day = ms + self.rng.integers(0, nd, ids_rows.size)
        return np.minimum(day, gone_by_row)

    def _emit_month(self, ids, draw, f0, keep, ms, nd, gone_day, month) -> None:
        pop, rng, vocab = self.pop, self.rng, self.vocab
        counts = draw.counts

        def rows_for(name: str):
            c = counts[name]
            local = np.repeat(np.arange(ids.size), c)
            return local, self._days(ids[local], local, ms, nd, gone_day[local])

        # hospital spells
        for name, elective in (("emergency_admission", False), ("elective_admission", True)):
            local, day = rows_for(name)
            f = f0[local]
            n = local.size
            if elective:
                los = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 4, n))
                methods, weights = zip(*codes.ELECTIVE_METHODS, strict=True)
                primary = vocab.many(codes.ELECTIVE)[rng.integers(0, len(codes.ELECTIVE), n)]
            else:
                los = rng.geometric(1.0 / (2.0 + 1.5 * f)) - 1
                methods, weights = zip(*codes.EMERGENCY_METHODS, strict=True)
                frailty = rng.random(n) < FRAILTY_PRIMARY_BY_LEVEL[f]
                acute = vocab.many(codes.EMERGENCY_ACUTE)[
                    rng.integers(0, len(codes.EMERGENCY_ACUTE), n)
                ]
                frail_codes = vocab.many(codes.EMERGENCY_FRAILTY)[
                    rng.integers(0, len(codes.EMERGENCY_FRAILTY), n)
                ]
                primary = np.where(frailty, frail_codes, acute)
            w = np.array(weights) / sum(weights)
            method = vocab.many(methods)[rng.choice(len(methods), size=n, p=w)]
            dest = np.full(n, vocab("19"))
            if not elective:
                to_home = draw.new_care_home[local]
                dest[to_home] = np.where(
                    pop.nursing[ids[local[to_home]]] | (rng.random(to_home.sum()) < 0.5),
                    vocab("54"),
                    vocab("65"),
                )
                died_here = draw.died[local] & ~keep[local] & (rng.random(n) < 0.55)
                dest[died_here] = vocab("79")
                los[died_here] = gone_day[local[died_here]] - day[died_here]
                ae_rows = method == vocab("21")
                amb = rng.random(ae_rows.sum()) < AMBULANCE_BY_LEVEL[f[ae_rows]]
                self.ae.add(pid=ids[local[ae_rows]], day=day[ae_rows], ambulance=amb,
                            admitted=np.ones(ae_rows.sum(), dtype=bool))  # fmt: skip
            self.spells.add(pid=ids[local], day=day, los=los, elective=np.full(n, elective),
                            method=method, primary=primary, frail=f, dest=dest)  # fmt: skip

        local, day = rows_for("ae_not_admitted")
        amb = rng.random(local.size) < 0.6 * AMBULANCE_BY_LEVEL[f0[local]]
        self.ae.add(pid=ids[local], day=day, ambulance=amb, admitted=np.zeros(local.size, bool))

        local, day = rows_for("outpatient")
        u = rng.random(local.size)
        dna = 0.05 + 0.02 * (4 - pop.dep[ids[local]]) / 4
        attendance = np.where(u < dna, 1, np.where(u < dna + 0.08, 2, 0)).astype(np.int8)
        specs, sw = zip(*codes.SPECIALTIES, strict=True)
        spec = vocab.many(specs)[rng.choice(len(specs), size=local.size, p=np.array(sw) / sum(sw))]
        self.op.add(pid=ids[local], day=day, attendance=attendance, specialty=spec)

        for name, service in COMMUNITY_EVENTS.items():
            local, day = rows_for(name)
            self.community.add(pid=ids[local], day=day,
                               service=np.full(local.size, vocab(service)))  # fmt: skip
        for name, team in MH_EVENTS.items():
            local, day = rows_for(name)
            self.mh.add(pid=ids[local], day=day, team=np.full(local.size, vocab(team)))

        # social care events drawn as counts
        local, day = rows_for("sc_request")
        self._sc(ids[local], 0, day)
        assessed = rng.random(local.size) < 0.5
        later = np.minimum(day[assessed] + rng.integers(0, 15, assessed.sum()), ms + nd - 1)
        self._sc(ids[local[assessed]], 1, np.minimum(later, gone_day[local[assessed]]))
        local, day = rows_for("reablement")
        self._sc(ids[local], 0, day)
        self._sc(ids[local], 2, day, service=3, end=day + 42)
        local, day = rows_for("carer_support")
        self._sc(ids[local], 2, day, service=5, end=day + 90)

        # acute prescriptions
        local, day = rows_for("acute_medicine")
        meds, mw = zip(*codes.ACUTE_MEDICINES, strict=True)
        code = vocab.many(meds)[rng.choice(len(meds), size=local.size, p=np.array(mw) / sum(mw))]
        self.rx.add(pid=ids[local], day=day, code=code, quantity=np.full(local.size, 14.0))
        self._repeat_prescriptions(ids, f0, ms, nd, gone_day, month)

        # reviews: Clinical Frailty Scale with weight and BMI (at most one a month)
        reviewed = counts["frailty_review"] > 0
        rv = np.flatnonzero(reviewed)
        self._cfs_rows_at(ids, rv, f0, ms, nd, gone_day)

        # moves between states, coded in the month they happen
        rose = np.flatnonzero(draw.frailty_rose)
        if rose.size:
            day = np.minimum(ms + rng.integers(0, nd, rose.size), gone_day[rose])
            who = ids[rose]
            f_new = f0[rose] + 1
            self._deficit_rows(who, self.n_deficits(who, f0[rose]), self.n_deficits(who, f_new),
                               day)  # fmt: skip
            coded = np.isin(f_new, (2, 4, 5)) & (rng.random(rose.size) < 0.6)
            code = np.array([vocab(codes.FRAILTY_CODES[x]) for x in (2, 4, 5)])[
                np.searchsorted([2, 4, 5], f_new[coded])
            ]
            self.gp.add(pid=who[coded], day=day[coded], code=code,
                        value=np.full(coded.sum(), np.nan))  # fmt: skip
            extra = np.flatnonzero((rng.random(rose.size) < 0.5) & ~reviewed[rose])
            self._cfs_rows(who[extra], day[extra])
            for level in (4, 5):
                hit = f_new == level
                self._caseload_starts(who[hit], level, day[hit])
        began = np.flatnonzero(draw.dementia_began)
        if began.size:
            day = np.minimum(ms + rng.integers(0, nd, began.size), gone_day[began])
            self._dementia_codes(ids[began], day)
            memory = self.vocab(codes.deficit_codes()[codes.MEMORY_DEFICIT][0])
            self.gp.add(pid=ids[began], day=day, code=np.full(began.size, memory),
                        value=np.full(began.size, np.nan))  # fmt: skip
            for _ in range(2):
                self.mh.add(
                    pid=ids[began], day=day, team=np.full(began.size, vocab("memory_service"))
                )
        hc = np.flatnonzero(draw.new_home_care)
        if hc.size:
            d = np.sort(rng.integers(0, nd, (hc.size, 3)), axis=1) + ms
            d = np.minimum(d, gone_day[hc][:, None])
            self._sc(ids[hc], 0, d[:, 0])
            self._sc(ids[hc], 1, d[:, 1])
            pop.home_care_day[ids[hc]] = d[:, 2]
            mdt = rng.random(hc.size) < 0.1
            self.caseloads.add(pid=ids[hc[mdt]], caseload=np.zeros(mdt.sum(), dtype=np.int64),
                               day=d[mdt, 2], end=np.full(mdt.sum(), -1))  # fmt: skip
        ch = np.flatnonzero(draw.new_care_home)
        if ch.size:
            d = np.sort(rng.integers(0, nd, (ch.size, 2)), axis=1) + ms
            d = np.minimum(d, gone_day[ch][:, None])
            self._sc(ids[ch], 1, d[:, 0])
            who = ids[ch]
            pop.care_home_day[who] = d[:, 1]
            pop.nursing[who] = rng.random(ch.size) < np.where(f0[ch] >= 4, 0.5, 0.2)
            support = rng.random(ch.size) < 0.8
            self.caseloads.add(pid=who[support], caseload=np.full(support.sum(), 3),
                               day=d[support, 1], end=np.full(support.sum(), -1))  # fmt: skip

    def _cfs_rows_at(self, ids, rv, f0, ms, nd, gone_day) -> None:
        if rv.size == 0:
            return
        day = np.minimum(ms + self.rng.integers(0, nd, rv.size), gone_day[rv])
        pop = self.pop
        saved = pop.frail[ids[rv]].copy()
        pop.frail[ids[rv]] = f0[rv]  # the level at the review (start of the month)
        self._cfs_rows(ids[rv], day)
        pop.frail[ids[rv]] = saved

    def _sc(self, pid, event: int, day, service: int = -1, end=None, hours=None) -> None:
        n = np.size(pid)
        self.sc.add(
            pid=pid,
            event=np.full(n, event, dtype=np.int8),
            day=day,
            end=np.full(n, -1) if end is None else end,
            service=np.full(n, service, dtype=np.int8),
            hours=np.full(n, np.nan) if hours is None else hours,
        )

    def _repeat_prescriptions(self, ids, f0, ms, nd, gone_day, month) -> None:
        """Each repeat medicine is issued every 3 months (84 days' supply)."""
        pop = self.pop
        due = pop.phase[ids] == month % 3
        sel = np.flatnonzero(due)
        who = ids[sel]
        k = self.n_medicines(who, f0[sel])
        pid = np.repeat(who, k)
        slot = np.arange(pid.size) - np.repeat(np.cumsum(k) - k, k)
        code = pop.medicine_order[pid, slot]
        day = np.minimum(ms + np.minimum(pop.issue_day[pid], nd - 1), np.repeat(gone_day[sel], k))
        self.rx.add(pid=pid, day=day, code=code, quantity=np.full(pid.size, 84.0))
        dem = sel[(pop.dem[who] == 1) & pop.dementia_drug[who]]
        ap = sel[(pop.dem[who] == 1) & pop.antipsychotic[who]]
        for rows, med in ((dem, codes.DEMENTIA_MEDICINE), (ap, codes.ANTIPSYCHOTIC)):
            day = np.minimum(ms + np.minimum(pop.issue_day[ids[rows]], nd - 1), gone_day[rows])
            self.rx.add(pid=ids[rows], day=day, code=np.full(rows.size, self.vocab(med)),
                        quantity=np.full(rows.size, 84.0))  # fmt: skip


def age_years_from(birth_month: np.ndarray, month: int) -> np.ndarray:
    return (month - birth_month) // 12
