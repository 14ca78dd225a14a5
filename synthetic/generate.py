"""`generate(config, out_dir)`: simulate, write the extract per the contract, and the oracle."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from config.progress import ProgressFn, no_progress
from records.contract import CASELOADS, TABLES
from synthetic import codes
from synthetic.config import SynthConfig, prescriptions_complete_to, social_care_complete_to
from synthetic.oracle import KEY_COLUMNS, outcome_probability
from synthetic.process import build_tables
from synthetic.simulate import (
    HFRS_CODES_BY_LEVEL,
    SC_EVENTS,
    SC_SERVICES,
    Simulation,
    day_number,
    month_start,
)

ORACLE_FILE = "oracle.parquet"
# Share of rows dated after a table's complete_to that have arrived by the extract date.
LATE_ARRIVAL_KEEP = {"prescriptions": 0.5, "social_care": 0.6}


@dataclass
class SynthSummary:
    """What `generate` wrote."""

    out_dir: Path
    people: int
    rows: dict[str, int]
    oracle_rows: int
    index_date: date | None  # the last oracle index date
    eligible: int  # eligible people at that date
    mean_probability: float  # mean oracle probability there (the expected outcome rate)
    seconds: float
    injected: dict[tuple[str, str], int] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"Synthetic extract written to {self.out_dir} in {self.seconds:.1f} s"]
        lines += [f"  {name:<26}{n:>12,} rows" for name, n in self.rows.items()]
        lines.append(f"  {'oracle':<26}{self.oracle_rows:>12,} rows")
        if self.index_date is not None:
            lines.append(
                f"Outcome rate at {self.index_date}: {self.mean_probability:.1%} expected "
                f"(mean oracle probability over {self.eligible:,} eligible people)"
            )
        if self.injected:
            total = sum(self.injected.values())
            lines.append(
                f"Messy: {total:,} faulty rows injected, {len(self.injected)} kinds of fault "
                f"(`casefinder validate {self.out_dir}` counts each rule's rejects):"
            )
            tables: dict[str, list[int]] = {}
            for (table, _), n in sorted(self.injected.items()):
                tables.setdefault(table, []).append(n)
            lines += [
                f"  {table:<26}{sum(ns):>12,} rows, {len(ns)} kinds" for table, ns in tables.items()
            ]
        return "\n".join(lines)


def generate(
    config: SynthConfig, out_dir: Path, progress: ProgressFn | None = None
) -> SynthSummary:
    """Simulate `config.people` people and write the extract and oracle.parquet to `out_dir`."""
    config.validate()
    progress = progress or no_progress
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    sim = Simulation(config, build_tables(), rng)
    sim.make_population()
    sim.run(progress)
    progress("synthetic: assemble tables", 0.0)
    tables = assemble(sim)
    progress("synthetic: assemble tables", 1.0)
    progress("synthetic: oracle", 0.0)
    oracle = oracle_table(sim, tables["people"].column("person_id"))
    progress("synthetic: oracle", 1.0)

    injected: dict[tuple[str, str], int] = {}
    if config.messy:
        from synthetic.messy import add_faults

        tables, injected = add_faults(tables, config.seed, config.end)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for other in ("parquet", "csv"):  # one file per table: remove a stale copy in the other format
        if other != config.file_format:
            for name in TABLES:
                (out_dir / f"{name}.{other}").unlink(missing_ok=True)
    manifest = {
        "extract_date": config.end.isoformat(),
        "complete_to": {
            "prescriptions": prescriptions_complete_to(config.end).isoformat(),
            "social_care": social_care_complete_to(config.end).isoformat(),
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for i, (name, table) in enumerate(tables.items()):
        _write(table, out_dir / f"{name}.{config.file_format}")
        progress("synthetic: write files", (i + 1) / (len(tables) + 1))
    pq.write_table(oracle, out_dir / ORACLE_FILE, store_schema=False)
    progress("synthetic: write files", 1.0)

    last = max(config.index_dates(), default=None)
    eligible, mean_p = 0, float("nan")
    if last is not None:
        at_last = oracle.filter(pa.compute.equal(oracle["index_date"], pa.scalar(last)))
        eligible = at_last.num_rows
        mean_p = float(np.mean(at_last["probability"].to_numpy())) if eligible else float("nan")
    return SynthSummary(
        out_dir=out_dir,
        people=tables["people"].num_rows,
        rows={name: t.num_rows for name, t in tables.items()},
        oracle_rows=oracle.num_rows,
        index_date=last,
        eligible=eligible,
        mean_probability=mean_p,
        seconds=time.perf_counter() - started,
        injected=injected,
    )


def _write(table: pa.Table, path: Path) -> None:
    if path.suffix == ".parquet":
        pq.write_table(table, path, store_schema=False)
        return
    plain = pa.table(
        {
            name: col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    pacsv.write_csv(plain, path, pacsv.WriteOptions(quoting_style="needed"))


# ---------------------------------------------------------------------- assembling tables


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Day numbers (days since 1970-01-01) as dates; `null` marks missing ones."""
    days = np.asarray(days, dtype=np.int64)
    return pa.array(days.astype(np.int32), type=pa.date32(), mask=null)


def _optional_dates(days: np.ndarray) -> pa.Array:
    """Day numbers where -1 means missing (only for dates after 1970)."""
    days = np.asarray(days, dtype=np.int64)
    return _dates(days, null=days < 0)


def _strings(index: np.ndarray, values, null: np.ndarray | None = None) -> pa.Array:
    dictionary = pa.array(list(values), type=pa.string())
    idx = pa.array(np.asarray(index, dtype=np.int32), mask=null)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def _floats(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, mask=np.isnan(values))


def assemble(sim: Simulation) -> dict[str, pa.Table]:
    """Turn the simulation's rows into one pyarrow table per contract table."""
    pop, place, rng, cfg = sim.pop, sim.place, sim.rng, sim.config
    vocab = sim.vocab.values
    end_day = sim.end_day
    raw = rng.integers(0, 2**62, pop.n * 2)
    unique = np.unique(raw)
    ids = rng.permutation(unique)[: pop.n]
    person_ids = np.array([f"{x:016x}"[-12:] for x in ids.tolist()], dtype=object)
    if len(set(person_ids.tolist())) != pop.n:
        raise RuntimeError("person_id collision; try another seed")
    pid_dict = pa.array(person_ids.tolist(), type=pa.string())

    def person(pid: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(pid.astype(np.int32)), pid_dict)

    gone = pop.gone_day >= 0
    hood = place.lsoa_hood[pop.lsoa]
    people = pa.table(
        {
            "person_id": pa.array(person_ids.tolist(), type=pa.string()),
            "birth_date": _dates(pop.birth_day),
            "sex": pa.array(np.where(pop.sex == 1, "2", "1").tolist(), type=pa.string()),
            "ethnic_category": pa.array(pop.ethnic.tolist(), type=pa.string()),
            "lsoa_code": _strings(pop.lsoa, place.lsoa_codes.tolist()),
            "imd_decile": pa.array(place.lsoa_imd[pop.lsoa].astype(np.int32)),
            "gp_practice_code": _strings(pop.practice, place.practice_codes.tolist()),
            "neighbourhood": _strings(hood, place.hood_names),
            "registration_start": _dates(pop.reg_start),
            "registration_end": _optional_dates(np.where(gone, pop.gone_day, -1)),
            "date_of_death": _optional_dates(np.where(pop.died, pop.gone_day, -1)),
            "data_opt_out": pa.array(pop.opt_out),
        }
    )

    def keep_rows(pid: np.ndarray, day: np.ndarray, table: str) -> np.ndarray:
        keep = day <= end_day
        if table != "gp_events":  # the GP record moves with the patient; other sources do not
            keep &= ~(pop.late[pid] & (day < pop.reg_start[pid]))
        if table in LATE_ARRIVAL_KEEP:
            complete = day_number(
                prescriptions_complete_to(cfg.end)
                if table == "prescriptions"
                else social_care_complete_to(cfg.end)
            )
            late = day > complete
            keep &= ~late | (rng.random(day.size) < LATE_ARRIVAL_KEEP[table])
        return keep

    out: dict[str, pa.Table] = {"people": people}

    gp = sim.gp.build()
    k = keep_rows(gp["pid"], gp["day"], "gp_events")
    out["gp_events"] = pa.table(
        {
            "person_id": person(gp["pid"][k]),
            "event_date": _dates(gp["day"][k]),
            "snomed_code": _strings(gp["code"][k], vocab),
            "value": _floats(gp["value"][k]),
        }
    )
    del gp

    rx = sim.rx.build()
    k = keep_rows(rx["pid"], rx["day"], "prescriptions")
    out["prescriptions"] = pa.table(
        {
            "person_id": person(rx["pid"][k]),
            "issue_date": _dates(rx["day"][k]),
            "bnf_code": _strings(rx["code"][k], vocab),
            "quantity": _floats(rx["quantity"][k]),
        }
    )
    del rx

    out["hospital_spells"] = _spells(sim, keep_rows, person)

    ae = sim.ae.build()
    k = keep_rows(ae["pid"], ae["day"], "ae_attendances")
    out["ae_attendances"] = pa.table(
        {
            "person_id": person(ae["pid"][k]),
            "arrival_date": _dates(ae["day"][k]),
            "arrival_mode": _strings(ae["ambulance"][k].astype(np.int32), ["other", "ambulance"]),
            "admitted": pa.array(ae["admitted"][k].astype(bool)),
        }
    )

    op = sim.op.build()
    k = keep_rows(op["pid"], op["day"], "outpatient_appointments")
    out["outpatient_appointments"] = pa.table(
        {
            "person_id": person(op["pid"][k]),
            "appointment_date": _dates(op["day"][k]),
            "attendance": _strings(
                op["attendance"][k], ["attended", "did_not_attend", "cancelled"]
            ),
            "specialty_code": _strings(op["specialty"][k], vocab),
        }
    )

    cc = sim.community.build()
    k = keep_rows(cc["pid"], cc["day"], "community_contacts")
    out["community_contacts"] = pa.table(
        {
            "person_id": person(cc["pid"][k]),
            "contact_date": _dates(cc["day"][k]),
            "service": _strings(cc["service"][k], vocab),
        }
    )
    out["social_care"] = _social_care(sim, keep_rows, person)

    mh = sim.mh.build()
    k = keep_rows(mh["pid"], mh["day"], "mental_health_contacts")
    out["mental_health_contacts"] = pa.table(
        {
            "person_id": person(mh["pid"][k]),
            "contact_date": _dates(mh["day"][k]),
            "team_type": _strings(mh["team"][k], vocab),
        }
    )

    cl = sim.caseloads.build()
    pid, day = cl["pid"], cl["day"]
    end = np.where(cl["end"] >= 0, cl["end"], np.iinfo(np.int64).max)
    end = np.where(gone[pid], np.minimum(end, pop.gone_day[pid]), end)
    end = np.where(end > end_day, -1, end)
    k = keep_rows(pid, day, "caseloads")
    out["caseloads"] = pa.table(
        {
            "person_id": person(pid[k]),
            "caseload": _strings(cl["caseload"][k], CASELOADS),
            "start_date": _dates(day[k]),
            "end_date": _optional_dates(end[k]),
        }
    )
    assert set(out) == set(TABLES), set(TABLES) ^ set(out)
    return {name: out[name] for name in TABLES}


def _spells(sim: Simulation, keep_rows, person) -> pa.Table:
    pop, rng = sim.pop, sim.rng
    vocab = sim.vocab.values
    sp = sim.spells.build()
    pid, day = sp["pid"], sp["day"]
    k = keep_rows(pid, day, "hospital_spells")
    sp = {name: v[k] for name, v in sp.items()}
    pid, day, f = sp["pid"], sp["day"], sp["frail"].astype(np.int64)
    n = pid.size
    discharge = day + sp["los"]
    dest = sp["dest"].copy()
    gone = pop.gone_day[pid]
    past_gone = (gone >= 0) & (discharge > gone)
    discharge[past_gone] = gone[past_gone]
    died_in = past_gone & pop.died[pid]
    dest[died_in] = sim.vocab("79")
    open_spell = discharge > sim.end_day
    discharge[open_spell] = -1

    # diagnoses: primary; the person's coded conditions; HFRS codes, more with frailty
    deficit_icd = np.full(len(sim.deficit_names), -1, dtype=np.int64)
    for i, name in enumerate(sim.deficit_names):
        if name in codes.DEFICIT_ICD10:
            deficit_icd[i] = sim.vocab(codes.DEFICIT_ICD10[name])
    k_def = np.minimum(sim.n_deficits(pid, f), 6)
    cols = [sp["primary"].astype(np.int64)]
    for j in range(6):
        c = deficit_icd[pop.deficit_order[pid, j]]
        cols.append(np.where(j < k_def, c, -1))
    hfrs = sim.vocab.many(codes.HFRS_SECONDARY)
    h = np.minimum(rng.poisson(HFRS_CODES_BY_LEVEL[f]), 4)
    for j in range(4):
        c = hfrs[rng.integers(0, hfrs.size, n)]
        cols.append(np.where(j < h, c, -1))
    matrix = np.stack(cols, axis=1)
    text = np.array([*sim.vocab.values, ""], dtype=object)
    matrix[matrix < 0] = len(sim.vocab.values)
    diagnoses = [";".join(dict.fromkeys(x for x in row if x)) for row in text[matrix].tolist()]
    spell_no = rng.permutation(n) + 1
    return pa.table(
        {
            "spell_id": pa.array([f"S{x:09d}" for x in spell_no.tolist()], type=pa.string()),
            "person_id": person(pid),
            "admission_date": _dates(day),
            "discharge_date": _optional_dates(discharge),
            "admission_method": _strings(sp["method"], vocab),
            "diagnoses": pa.array(diagnoses, type=pa.string()),
            "discharge_destination": _strings(dest, vocab, null=open_spell),
        }
    )


def _social_care(sim: Simulation, keep_rows, person) -> pa.Table:
    pop, rng = sim.pop, sim.rng
    sc = sim.sc.build()
    pid, day, end = sc["pid"], sc["day"], sc["end"]
    service, hours = sc["service"].astype(np.int64), sc["hours"]
    # long-term services, one row per start, ending at the next move or on leaving
    hc = np.flatnonzero(pop.home_care_day >= 0)
    ch = np.flatnonzero(pop.care_home_day >= 0)
    hc_end = np.where(pop.care_home_day[hc] >= 0, pop.care_home_day[hc] - 1, -1)
    hc_type = np.where(pop.home_care_dp[hc], SC_SERVICES.index("direct_payment"), 0)
    hc_hours = np.where(
        hc_type == 0,
        np.round(4 + 2.5 * pop.frail[hc] + rng.normal(0, 2, hc.size)).clip(1, 40),
        np.nan,
    )
    ch_type = np.where(pop.nursing[ch], 2, 1)
    pid = np.concatenate([pid, hc, ch])
    day = np.concatenate([day, pop.home_care_day[hc], pop.care_home_day[ch]])
    end = np.concatenate([end, hc_end, np.full(ch.size, -1)])
    event = np.concatenate([sc["event"], np.full(hc.size + ch.size, 2, dtype=np.int8)])
    service = np.concatenate([service, hc_type, ch_type])
    hours = np.concatenate([hours, hc_hours, np.full(ch.size, np.nan)])
    gone = pop.gone_day[pid]
    end = np.where((gone >= 0) & ((end < 0) | (end > gone)), gone, end)
    end = np.where(end > sim.end_day, -1, end)
    end = np.where((end >= 0) & (end < day), day, end)
    order = np.lexsort((day, pid))
    pid, day, end, event, service, hours = (
        a[order] for a in (pid, day, end, event, service, hours)
    )
    k = keep_rows(pid, day, "social_care")
    return pa.table(
        {
            "person_id": person(pid[k]),
            "event_type": _strings(event[k], SC_EVENTS),
            "start_date": _dates(day[k]),
            "end_date": _optional_dates(end[k]),
            "service_type": _strings(np.maximum(service[k], 0), SC_SERVICES, null=service[k] < 0),
            "hours_per_week": _floats(hours[k]),
        }
    )


def oracle_table(sim: Simulation, person_id: pa.ChunkedArray) -> pa.Table:
    """oracle.parquet: (person_id, index_date, probability) for everyone eligible at each date."""
    snap = sim.oracle.build()
    keys = np.stack([snap[c].astype(np.int64) for c in KEY_COLUMNS], axis=1)
    prob = outcome_probability(sim.tables, keys) if keys.size else np.zeros(0)
    months = snap["month"].astype(np.int64)
    days = np.array([month_start(int(m)) for m in months], dtype=np.int64)
    ids = person_id.combine_chunks()
    return pa.table(
        {
            "person_id": ids.take(pa.array(snap["pid"].astype(np.int64))),
            "index_date": _dates(days),
            "probability": pa.array(prob, type=pa.float64()),
        }
    )


__all__ = ["ORACLE_FILE", "SynthSummary", "generate"]
