"""Measure a generated extract against the published figures the generator is tuned to.

Reads the loaded extract (DuckDB tables from `records.load_extract`) with SQL, so the figures
are those any user of the extract would get. Used by the tests and to write docs/synthetic.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from synthetic.config import add_months

EFI_CATEGORIES = ("fit", "mild", "moderate", "severe")
OUTCOME_SERVICES = (
    "long_term_community",
    "long_term_residential",
    "long_term_nursing",
    "short_term_reablement",
    "direct_payment",
)


def eligible_sql(index_date: date) -> str:
    """People eligible at `index_date`: 65+, alive, registered (the contract's rule)."""
    d = f"DATE '{index_date}'"
    return f"""
        SELECT person_id, birth_date, imd_decile, sex,
               date_diff('year', birth_date, {d})
                 - CASE WHEN strftime(birth_date, '%m-%d') > strftime({d}, '%m-%d')
                        THEN 1 ELSE 0 END AS age
        FROM people
        WHERE (date_of_death IS NULL OR date_of_death >= {d})
          AND (registration_start IS NULL OR registration_start <= {d})
          AND (registration_end IS NULL OR registration_end >= {d})
          AND birth_date <= {d} - INTERVAL 65 YEAR
    """


def outcome_sql(index_date: date) -> str:
    """person_id, outcome (0/1) for everyone eligible at `index_date` (contract default)."""
    lo = f"DATE '{index_date}'"
    hi = f"DATE '{add_months(index_date, 12)}'"
    services = ", ".join(f"'{s}'" for s in OUTCOME_SERVICES)
    return f"""
        WITH e AS ({eligible_sql(index_date)}),
        acute AS (SELECT DISTINCT person_id FROM hospital_spells
                  WHERE admission_date >= {lo} AND admission_date < {hi}
                    AND admission_method IN ('21','22','23','24','25','2A','2B','2C','2D','28')),
        comm AS (SELECT person_id FROM community_contacts
                 WHERE contact_date >= {lo} AND contact_date < {hi}
                 GROUP BY person_id
                 HAVING count(*) FILTER (WHERE service = 'intermediate_care') > 0
                     OR count(*) FILTER (WHERE service IN ('district_nursing',
                                                          'community_matron')) >= 6),
        sc AS (SELECT DISTINCT person_id FROM social_care
               WHERE event_type = 'service' AND start_date >= {lo} AND start_date < {hi}
                 AND service_type IN ({services})),
        placed AS (SELECT DISTINCT person_id FROM social_care
                   WHERE event_type = 'service' AND start_date >= {lo} AND start_date < {hi}
                     AND service_type IN ('long_term_residential', 'long_term_nursing')),
        mh AS (SELECT DISTINCT person_id FROM mental_health_contacts
               WHERE contact_date >= {lo} AND contact_date < {hi}
                 AND team_type IN ('crisis', 'older_adult_cmht'))
        SELECT e.person_id,
               CASE WHEN (acute.person_id IS NOT NULL)::INT + (comm.person_id IS NOT NULL)::INT
                         + (sc.person_id IS NOT NULL)::INT + (mh.person_id IS NOT NULL)::INT >= 2
                         OR placed.person_id IS NOT NULL THEN 1 ELSE 0 END AS outcome
        FROM e
        LEFT JOIN acute USING (person_id) LEFT JOIN comm USING (person_id)
        LEFT JOIN sc USING (person_id) LEFT JOIN placed USING (person_id)
        LEFT JOIN mh USING (person_id)
    """


@dataclass
class Realism:
    """Figures for one year of the extract, from `index_date` (people eligible then)."""

    index_date: date
    eligible: int
    admissions_per_person_year: float
    admissions_by_band: dict[str, float]
    admissions_most_vs_least_deprived: float
    efi_categories: dict[str, float]  # fit / mild / moderate / severe shares
    long_term_social_care: float
    mortality_by_band: dict[str, float]
    outcome_rate: float


def measure(con: duckdb.DuckDBPyConnection, index_date: date) -> Realism:
    """Measure the loaded extract in `con` over the year from `index_date`."""
    d = f"DATE '{index_date}'"
    hi = f"DATE '{add_months(index_date, 12)}'"
    con.execute(f"CREATE OR REPLACE TEMP TABLE __elig AS {eligible_sql(index_date)}")
    con.execute(
        """CREATE OR REPLACE TEMP TABLE __elig_b AS SELECT *,
           CASE WHEN age >= 90 THEN '90+' ELSE (5 * (age // 5))::VARCHAR || '-'
                || (5 * (age // 5) + 4)::VARCHAR END AS band,
           (imd_decile + 1) // 2 AS imd_quintile FROM __elig"""
    )
    (eligible,) = con.execute("SELECT count(*) FROM __elig").fetchone()
    # person-years at risk in the year (to death or leaving), emergency admissions in it
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE __py AS
        SELECT e.person_id, e.band, e.imd_quintile,
               date_diff('day', {d}, least({hi}, coalesce(p.registration_end + 1, {hi}),
                                         coalesce(p.date_of_death + 1, {hi}))) / 365.25 AS years,
               coalesce(p.date_of_death < {hi}, false) AS died,
               (SELECT count(*) FROM hospital_spells s WHERE s.person_id = e.person_id
                  AND s.admission_date >= {d} AND s.admission_date < {hi}
                  AND s.admission_method NOT IN ('11','12','13','31','32','81','82','83'))
                 AS admissions
        FROM __elig_b e JOIN people p USING (person_id)"""
    )
    (rate,) = con.execute("SELECT sum(admissions) / sum(years) FROM __py").fetchone()
    by_band = dict(
        con.execute(
            "SELECT band, sum(admissions) / sum(years) FROM __py GROUP BY band ORDER BY band"
        ).fetchall()
    )
    q = dict(
        con.execute(
            "SELECT imd_quintile, sum(admissions) / sum(years) FROM __py GROUP BY imd_quintile"
        ).fetchall()
    )
    mortality = dict(
        con.execute("SELECT band, avg(died::INT) FROM __py GROUP BY band ORDER BY band").fetchall()
    )
    # eFI at the index date: distinct deficits coded before it, plus polypharmacy (5+ distinct
    # medicines in the year before)
    efi = con.execute(
        f"""WITH deficits AS (
              SELECT g.person_id, count(DISTINCT c.deficit) AS n
              FROM gp_events g
              JOIN read_csv_auto('{_efi_path()}', all_varchar = true) c
                ON g.snomed_code = c.snomed_code
              WHERE g.event_date < {d} GROUP BY g.person_id),
            meds AS (
              SELECT person_id, count(DISTINCT bnf_code) AS n FROM prescriptions
              WHERE issue_date < {d} AND issue_date >= {d} - INTERVAL 1 YEAR
              GROUP BY person_id),
            score AS (
              SELECT (coalesce(deficits.n, 0) + (coalesce(meds.n, 0) >= 5)::INT) / 36.0 AS efi
              FROM __elig e LEFT JOIN deficits USING (person_id) LEFT JOIN meds USING (person_id))
            SELECT avg((efi <= 0.12)::INT), avg((efi > 0.12 AND efi <= 0.24)::INT),
                   avg((efi > 0.24 AND efi <= 0.36)::INT), avg((efi > 0.36)::INT) FROM score"""
    ).fetchone()
    (ltc,) = con.execute(
        f"""SELECT avg((s.person_id IS NOT NULL)::INT) FROM __elig e LEFT JOIN (
              SELECT DISTINCT person_id FROM social_care
              WHERE event_type = 'service' AND start_date < {d}
                AND (end_date IS NULL OR end_date >= {d})
                AND service_type IN ('long_term_community', 'long_term_residential',
                                     'long_term_nursing', 'direct_payment')) s
            USING (person_id)"""
    ).fetchone()
    (outcome,) = con.execute(f"SELECT avg(outcome) FROM ({outcome_sql(index_date)})").fetchone()
    return Realism(
        index_date=index_date,
        eligible=int(eligible),
        admissions_per_person_year=float(rate),
        admissions_by_band={str(k): float(v) for k, v in by_band.items()},
        admissions_most_vs_least_deprived=float(q[1] / q[5]),
        efi_categories=dict(zip(EFI_CATEGORIES, map(float, efi), strict=True)),
        long_term_social_care=float(ltc),
        mortality_by_band={str(k): float(v) for k, v in mortality.items()},
        outcome_rate=float(outcome),
    )


def _efi_path() -> str:
    from synthetic.codes import CODELISTS

    return str(CODELISTS / "efi_deficits.csv")
