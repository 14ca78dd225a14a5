"""The synthetic generator: configuration, validity against the loader, determinism, oracle."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from records import load_extract
from records.contract import TABLES
from synthetic import ORACLE_FILE, SynthConfig, generate
from synthetic.oracle import outcome_probability, simulate_outcome
from synthetic.process import build_tables
from synthetic.realism import eligible_sql


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("synth") / "extract"
    summary = generate(SynthConfig(people=1500, seed=7), out)
    return out, summary


def test_default_oracle_dates_are_quarters_with_whole_window_in_history():
    dates = SynthConfig().index_dates()
    assert dates[0] == date(2022, 1, 1)
    assert dates[-1] == date(2025, 10, 1)
    assert len(dates) == 16
    assert all(d.day == 1 and d.month in (1, 4, 7, 10) for d in dates)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"people": 0}, "people"),
        ({"file_format": "xlsx"}, "file_format"),
        ({"start": date(2021, 11, 2)}, "first day of a month"),
        ({"end": date(2021, 11, 15)}, "at least one month"),
        ({"oracle_dates": (date(2026, 1, 1),)}, "window must lie inside"),
        ({"oracle_dates": (date(2023, 1, 15),)}, "not the first day"),
        ({"seed": -1}, "seed"),
    ],
)
def test_validate_names_the_bad_setting(changes, message):
    config = SynthConfig(**{"people": 10, **changes})
    with pytest.raises(ValueError, match=message):
        config.validate()


def test_extract_loads_with_zero_rejects(small):
    out, summary = small
    extract = load_extract(out)
    assert extract.n_rejected == 0, {t: r.reasons for t, r in extract.reports.items() if r.rejected}
    assert extract.manifest.extract_date == date(2026, 10, 31)
    assert extract.manifest.complete_to_for("prescriptions") == date(2026, 9, 30)
    assert extract.manifest.complete_to_for("social_care") < date(2026, 10, 31)
    for name in TABLES:
        (n,) = extract.con.execute(f"SELECT count(*) FROM {name}").fetchone()
        assert n == summary.rows[name] and n > 0, name
    assert summary.people == 1500


def test_every_code_set_and_table_is_represented(small):
    out, _ = small
    con = load_extract(out).con

    def values(sql: str) -> set:
        return {r[0] for r in con.execute(sql).fetchall()}

    assert values("SELECT DISTINCT service FROM community_contacts") >= {
        "district_nursing", "community_matron", "intermediate_care", "falls", "palliative"
    }  # fmt: skip
    assert values("SELECT DISTINCT service_type FROM social_care") >= {
        "long_term_community", "long_term_residential", "long_term_nursing",
        "short_term_reablement", "direct_payment", "carer_support",
    }  # fmt: skip
    assert values("SELECT DISTINCT team_type FROM mental_health_contacts") >= {
        "memory_service", "older_adult_cmht", "crisis", "liaison"
    }  # fmt: skip
    assert values("SELECT DISTINCT caseload FROM caseloads") == set(TABLES["caseloads"].column(
        "caseload").allowed)  # fmt: skip
    assert values("SELECT DISTINCT attendance FROM outpatient_appointments") == {
        "attended", "did_not_attend", "cancelled"
    }  # fmt: skip
    assert values("SELECT DISTINCT discharge_destination FROM hospital_spells") >= {
        "19", "54", "65", "79"
    }  # fmt: skip
    methods = values("SELECT DISTINCT admission_method FROM hospital_spells")
    assert {"11", "21"} <= methods
    assert values("SELECT DISTINCT arrival_mode FROM ae_attendances") == {"ambulance", "other"}
    (cfs_values,) = con.execute(
        "SELECT count(DISTINCT value) FROM gp_events WHERE snomed_code = '763264000'"
    ).fetchone()
    assert cfs_values >= 5
    (hours,) = con.execute(
        "SELECT count(*) FROM social_care WHERE service_type = 'long_term_community' "
        "AND hours_per_week > 0"
    ).fetchone()
    assert hours > 0
    hoods = values("SELECT DISTINCT neighbourhood FROM people")
    assert len(hoods) == 8
    (n_hfrs,) = con.execute(
        "SELECT count(*) FROM hospital_diagnoses WHERE icd10 LIKE 'R29%' OR icd10 LIKE 'W19%'"
    ).fetchone()
    assert n_hfrs > 0
    (opted, late, gone) = con.execute(
        "SELECT avg(data_opt_out::INT), avg((registration_start > DATE '2021-11-01')::INT), "
        "avg((registration_end IS NOT NULL AND date_of_death IS NULL)::INT) FROM people"
    ).fetchone()
    assert 0.01 < opted < 0.07 and 0.01 < late < 0.06 and 0.01 < gone < 0.1


def test_rows_respect_record_rules(small):
    out, _ = small
    con = load_extract(out).con
    (dups,) = con.execute(
        "SELECT count(*) - count(DISTINCT spell_id) FROM hospital_spells"
    ).fetchone()
    assert dups == 0
    (bad,) = con.execute(
        "SELECT count(*) FROM hospital_spells s JOIN people p USING (person_id) "
        "WHERE s.discharge_date < s.admission_date OR (s.discharge_destination = '79' AND "
        "s.discharge_date IS DISTINCT FROM p.date_of_death) OR s.admission_date < p.birth_date "
        "OR s.discharge_date > p.date_of_death"
    ).fetchone()
    assert bad == 0
    (young,) = con.execute(
        "SELECT count(*) FROM people WHERE birth_date > DATE '2021-11-01' - INTERVAL 60 YEAR"
    ).fetchone()
    assert young == 0


def test_same_seed_same_bytes(tmp_path):
    digests = []
    for run in ("a", "b"):
        out = tmp_path / run
        generate(SynthConfig(people=400, seed=3), out)
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
        )
    assert digests[0] == digests[1]
    assert len(digests[0]) == len(TABLES) + 2  # tables, manifest, oracle
    other = tmp_path / "c"
    generate(SynthConfig(people=400, seed=4), other)
    assert (
        hashlib.sha256((other / "people.parquet").read_bytes()).hexdigest()
        != digests[0]["people.parquet"]
    )


def test_csv_format_loads_with_zero_rejects(tmp_path):
    out = tmp_path / "csv"
    generate(SynthConfig(people=300, seed=5, file_format="csv"), out)
    assert (out / "people.csv").is_file() and not (out / "people.parquet").exists()
    extract = load_extract(out)
    assert extract.n_rejected == 0


def test_oracle_covers_exactly_the_eligible_people(small):
    out, _ = small
    con = load_extract(out).con
    oracle = pq.read_table(out / ORACLE_FILE)
    assert oracle.column_names == ["person_id", "index_date", "probability"]
    p = oracle["probability"].to_numpy()
    assert np.all((p >= 0) & (p <= 1)) and p.std() > 0.05
    con.register("oracle", oracle)
    for d in (date(2022, 1, 1), date(2025, 10, 1)):
        (missing, extra) = con.execute(
            f"""SELECT
                (SELECT count(*) FROM ({eligible_sql(d)}) e ANTI JOIN
                   (SELECT * FROM oracle WHERE index_date = DATE '{d}') o USING (person_id)),
                (SELECT count(*) FROM (SELECT * FROM oracle WHERE index_date = DATE '{d}') o
                   ANTI JOIN ({eligible_sql(d)}) e USING (person_id))"""
        ).fetchone()
        assert missing == 0 and extra == 0


# Keys: (band, months until band change or 12, sex, deprivation, propensity, frailty, care, dem)
KEYS = [
    (1, 12, 0, 4, 0, 0, 0, 0),  # fit 65-69, least deprived, low use
    (3, 5, 1, 2, 2, 3, 1, 0),  # 75-79 turning 80 in month 5, home care
    (5, 12, 0, 0, 1, 4, 0, 1),  # 85-89 with dementia, most deprived
    (6, 12, 1, 1, 1, 5, 1, 1),  # severely frail 90-94 with home care and dementia
    (2, 12, 1, 3, 1, 2, 2, 0),  # care home resident
]


def test_oracle_matches_monte_carlo_of_the_generators_own_process():
    tables = build_tables()
    exact = outcome_probability(tables, np.array(KEYS))
    rng = np.random.default_rng(11)
    n = 60_000
    for key, p in zip(KEYS, exact, strict=True):
        share = simulate_outcome(tables, key, n, rng)
        se = np.sqrt(max(p * (1 - p), 1e-4) / n)
        assert abs(share - p) < 4 * se, (key, p, share)
    assert exact[0] < 0.02 < 0.3 < exact[3]


def test_oracle_depends_on_the_key_in_the_expected_direction():
    tables = build_tables()
    base = np.array([3, 12, 0, 2, 1, 2, 0, 0])
    frailer, older, deprived, demented = (base.copy() for _ in range(4))
    frailer[5] = 4
    older[0] = 5
    deprived[3] = 0
    demented[7] = 1
    p = outcome_probability(tables, np.stack([base, frailer, older, deprived, demented]))
    assert all(p[1:] > p[0])


def test_messy_extract_rejects_the_injected_rows(tmp_path):
    out = tmp_path / "messy"
    summary = generate(SynthConfig(people=300, seed=9, messy=True), out)
    assert summary.injected and sum(summary.injected.values()) > 0
    # Summarised per table (one line each), not one line per kind of fault.
    text = summary.describe()
    assert "Messy:" in text and f"{len(summary.injected)} kinds of fault" in text
    assert len(text.splitlines()) <= len(summary.rows) * 2 + 6
    extract = load_extract(out)
    assert extract.n_rejected > 0
    rejected_tables = {t for t, r in extract.reports.items() if r.rejected}
    assert rejected_tables <= {t for t, _ in summary.injected}
