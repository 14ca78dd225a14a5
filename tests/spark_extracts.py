"""Small random extracts for the engine parity tests (hypothesis strategies), with the edge
cases on purpose: records on the index date, the day before and on `complete_to`, birthdays on
the index date, leap days, month ends, missing values, ties and an unknown person."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from features.codelists import CHARLSON_TABLE, bnf_groups, charlson_codes, gp_code_rows, hfrs_points
from records.contract import (
    ADMISSION_METHODS,
    CARE_HOME_DESTINATIONS,
    CASELOADS,
    COMMUNITY_SERVICES,
    MH_TEAMS,
    SOCIAL_CARE_EVENTS,
    SOCIAL_CARE_SERVICES,
)

assert CHARLSON_TABLE
# Two index dates either side of 29 February 2024; the outcome window of the later one ends on
# social care's complete_to, and prescriptions are complete to mid-February.
INDEX_DATES = (date(2024, 2, 1), date(2024, 3, 1))
MANIFEST = {
    "extract_date": "2025-03-31",
    "complete_to": {"prescriptions": "2024-02-14", "social_care": "2025-02-28"},
}
_D1, _D2 = INDEX_DATES
_EDGE_DAYS = (
    _D1,
    _D1 - timedelta(days=1),
    _D2,
    _D2 - timedelta(days=1),
    date(2024, 2, 29),
    date(2024, 2, 28),
    date(2024, 2, 14),
    date(2024, 2, 15),
    date(2023, 2, 28),
    date(2023, 3, 1),
    date(2023, 2, 1),
    date(2023, 12, 31),
    date(2023, 11, 30),
    date(2022, 2, 28),
    date(2025, 2, 28),
    date(2025, 3, 1),
    date(2025, 1, 31),
)
_BIRTHS = (
    date(1959, 2, 1),
    date(1959, 2, 2),
    date(1959, 3, 1),
    date(1959, 2, 28),
    date(1956, 2, 29),
    date(1944, 2, 29),
    date(1959, 1, 31),
)


def _day(lo: date, hi: date) -> st.SearchStrategy[date]:
    return st.one_of(st.sampled_from([d for d in _EDGE_DAYS if lo <= d <= hi]), st.dates(lo, hi))


DAYS = _day(date(2021, 6, 1), date(2025, 3, 31))
SNOMED = [*[r[0] for r in gp_code_rows()][:40], "999999999"]
CFS = [r[0] for r in gp_code_rows() if r[4] == 1]
BNF = [*[p.ljust(9, "0") + "AAAAAA" for ps in bnf_groups().values() for p in ps][:20], "0101010G0"]
ICD10 = [*[c.icd10_prefix for c in charlson_codes()][:20], *list(hfrs_points())[:20], "Z99"]


def _text(day: date | None) -> str:
    return "" if day is None else day.isoformat()


@st.composite
def extracts(draw: st.DrawFn, max_people: int = 6) -> dict[str, list[dict[str, str]]]:
    """Rows of every contract table (strings, as in a CSV)."""
    n = draw(st.integers(1, max_people))
    ids = [f"P{i:02d}" for i in range(n)]
    people = []
    for pid in ids:
        birth = draw(
            st.one_of(st.sampled_from(_BIRTHS), st.dates(date(1925, 1, 1), date(1965, 12, 31)))
        )
        start = draw(st.one_of(st.none(), _day(date(1990, 1, 1), _D2)))
        people.append(
            {
                "person_id": pid,
                "birth_date": birth.isoformat(),
                "sex": draw(st.sampled_from(("1", "2", "9", "0"))),
                "ethnic_category": draw(st.sampled_from(("A", "Z", "99", ""))),
                "lsoa_code": "E01000001",
                "imd_decile": str(draw(st.integers(1, 10))),
                "gp_practice_code": draw(st.sampled_from(("P88001", "P88002"))),
                "neighbourhood": draw(st.sampled_from(("North", "South", "East"))),
                "registration_start": _text(start),
                "registration_end": _text(draw(st.one_of(st.none(), DAYS))),
                "date_of_death": _text(draw(st.one_of(st.none(), st.none(), DAYS))),
                "data_opt_out": draw(st.sampled_from(("N", "Y", ""))),
            }
        )
    person = st.sampled_from([*ids, *ids, "X99"])  # now and then someone not in people

    def rows(make: st.SearchStrategy[dict[str, str]], most: int = 8) -> list[dict[str, str]]:
        return draw(st.lists(make, max_size=most))

    value = st.one_of(
        st.just(""),
        st.sampled_from(("1", "4", "6", "9")),
        st.floats(0, 200).map(lambda v: f"{v:.3f}"),
    )
    gp = rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "event_date": DAYS.map(_text),
                "snomed_code": st.sampled_from(SNOMED + CFS * 4),
                "value": value,
            }
        ),
        12,
    )
    # The history starts before both index dates (a record dated on the first day).
    gp.insert(
        0, {"person_id": ids[0], "event_date": "2021-06-01", "snomed_code": SNOMED[0], "value": ""}
    )
    rx = rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "issue_date": DAYS.map(_text),
                "bnf_code": st.sampled_from(BNF),
                "quantity": st.just("28"),
            }
        ),
        12,
    )
    spells = []
    for i, s in enumerate(
        rows(
            st.tuples(
                person,
                DAYS,
                st.integers(-1, 40),
                st.sampled_from(ADMISSION_METHODS),
                st.lists(st.sampled_from(ICD10), min_size=1, max_size=3),
                st.sampled_from(("19", "", *CARE_HOME_DESTINATIONS)),
            ),
            6,
        )
    ):
        pid, admitted, stay, method, codes, dest = s
        spells.append(
            {
                "spell_id": f"S{i}",
                "person_id": pid,
                "admission_date": admitted.isoformat(),
                "discharge_date": "" if stay < 0 else (admitted + timedelta(days=stay)).isoformat(),
                "admission_method": method,
                "diagnoses": ";".join(codes),
                "discharge_destination": dest,
            }
        )
    ae = rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "arrival_date": DAYS.map(_text),
                "arrival_mode": st.sampled_from(("ambulance", "other", "")),
                "admitted": st.sampled_from(("Y", "N", "")),
            }
        )
    )
    op = rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "appointment_date": DAYS.map(_text),
                "attendance": st.sampled_from(("attended", "did_not_attend", "cancelled")),
                "specialty_code": st.just("430"),
            }
        )
    )
    cc = rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "contact_date": DAYS.map(_text),
                "service": st.sampled_from(COMMUNITY_SERVICES),
            }
        )
    )
    sc = []
    for p, kind, start, days, service, hours in rows(
        st.tuples(
            person,
            st.sampled_from(SOCIAL_CARE_EVENTS),
            DAYS,
            st.integers(-1, 400),
            st.sampled_from(("", *SOCIAL_CARE_SERVICES)),
            st.sampled_from(("", "2", "10.5")),
        )
    ):
        end = "" if days < 0 else min(start + timedelta(days=days), date(2025, 3, 31)).isoformat()
        sc.append(
            {
                "person_id": p,
                "event_type": kind,
                "start_date": start.isoformat(),
                "end_date": end,
                "service_type": service,
                "hours_per_week": hours,
            }
        )
    mh = rows(
        st.fixed_dictionaries(
            {
                "person_id": person,
                "contact_date": DAYS.map(_text),
                "team_type": st.sampled_from(MH_TEAMS),
            }
        )
    )
    cl = []
    for p, caseload, start, days in rows(
        st.tuples(person, st.sampled_from(CASELOADS), DAYS, st.integers(-1, 300)), 5
    ):
        end = "" if days < 0 else min(start + timedelta(days=days), date(2025, 3, 31)).isoformat()
        cl.append(
            {"person_id": p, "caseload": caseload, "start_date": start.isoformat(), "end_date": end}
        )
    return {
        "people": people,
        "gp_events": gp,
        "prescriptions": rx,
        "hospital_spells": spells,
        "ae_attendances": ae,
        "outpatient_appointments": op,
        "community_contacts": cc,
        "social_care": sc,
        "mental_health_contacts": mh,
        "caseloads": cl,
    }


# How many random extracts one parity example holds: Spark's cost is per query, not per row, so
# a batch of small extracts merged into one costs a single panel build on each engine.
BATCH = 8


def merged(batch: list[dict[str, list[dict[str, str]]]]) -> dict[str, list[dict[str, str]]]:
    """One extract holding every extract of `batch`, each one's ids (every `*_id` column)
    prefixed with its position (`x3_P01`), so their people and records never meet: a difference
    in the merged panel names the extract it came from."""
    out: dict[str, list[dict[str, str]]] = {}
    for k, rows in enumerate(batch):
        for table, records in rows.items():
            out.setdefault(table, []).extend(
                {c: f"x{k}_{v}" if c.endswith("_id") and v else v for c, v in r.items()}
                for r in records
            )
    return out


def assert_same_output(duck_file: Path, spark_folder: Path) -> pd.DataFrame:
    """What pandas reads from Spark's Parquet folder is exactly DuckDB's file: same columns in
    the same order, same dtypes, same rows in the same order, integers and text equal, floats to
    1e-9 relative, nulls in the same places. Returns DuckDB's table."""
    duck, ours = pd.read_parquet(duck_file), pd.read_parquet(spark_folder)
    pd.testing.assert_frame_equal(ours, duck, check_exact=False, rtol=1e-9, atol=0)
    return duck


def to_catalog(spark: Any, folder: Path, database: str, location: Path) -> str:
    """The CSV extract in `folder` saved as tables of a Spark catalog database at `location`
    (text columns, as a site's raw tables might be; the manifest in `extract_manifest`), as
    `load_spark_extract` reads them; returns the source, `catalog:DATABASE`."""
    from records.contract import TABLES
    from records.spark import MANIFEST_TABLE

    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database} LOCATION '{location}'")
    for name in TABLES:
        frame = spark.read.csv(str(folder / f"{name}.csv"), header=True, inferSchema=False)
        frame.coalesce(1).write.mode("overwrite").saveAsTable(f"{database}.{name}")
    manifest = (folder / "manifest.json").read_text("utf-8")
    spark.createDataFrame([(manifest,)], "manifest string").write.mode("overwrite").saveAsTable(
        f"{database}.{MANIFEST_TABLE}"
    )
    return f"catalog:{database}"
