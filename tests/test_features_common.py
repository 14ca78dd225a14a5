"""Hand-built extracts for the features, outcome and panel tests (no tests in this module)."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

from records import Extract, load_extract
from records.contract import TABLES

EXTRACT_DATE = "2026-10-31"

_DEFAULTS: dict[str, dict[str, str]] = {
    "people": {
        "birth_date": "1940-03-01",
        "sex": "2",
        "ethnic_category": "A",
        "lsoa_code": "E01000001",
        "imd_decile": "3",
        "gp_practice_code": "P88001",
        "neighbourhood": "North",
        "registration_start": "1990-01-01",
        "registration_end": "",
        "date_of_death": "",
        "data_opt_out": "N",
    },
    "gp_events": {"value": ""},
    "prescriptions": {"quantity": "28"},
    "hospital_spells": {
        "admission_method": "21",
        "diagnoses": "Z51",
        "discharge_date": "",
        "discharge_destination": "19",
    },
    "ae_attendances": {"arrival_mode": "other", "admitted": "N"},
    "outpatient_appointments": {"attendance": "attended", "specialty_code": "430"},
    "community_contacts": {},
    "social_care": {"end_date": "", "service_type": "", "hours_per_week": ""},
    "mental_health_contacts": {},
    "caseloads": {"end_date": ""},
}


def write(
    folder: Path, tables: dict[str, list[dict[str, str]]], manifest: dict | None = None
) -> Path:
    """Write an extract: every contract table (header from the contract), rows with defaults."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = manifest or {"extract_date": EXTRACT_DATE}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    spell_ids = 0
    for name, table in TABLES.items():
        columns = [c.name for c in table.columns]
        with (folder / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            for row in tables.get(name, []):
                full = {**_DEFAULTS[name], **row}
                if name == "hospital_spells" and "spell_id" not in full:
                    spell_ids += 1
                    full["spell_id"] = f"S{spell_ids:05d}"
                writer.writerow([str(full.get(c, "")) for c in columns])
    return folder


def person(pid: str, **values: str) -> dict[str, str]:
    return {"person_id": pid, **values}


def load(
    folder: Path, tables: dict[str, list[dict[str, str]]], manifest: dict | None = None
) -> Extract:
    """Write and load an extract; fail loudly if any row was rejected."""
    extract = load_extract(write(folder, tables, manifest))
    assert extract.n_rejected == 0, extract.con.execute(
        "SELECT table_name, reason, count(*) FROM rejects GROUP BY ALL"
    ).fetchall()
    return extract


def row_of(frame, pid: str) -> dict:
    """One person's row of a feature or outcome table, as a dict."""
    rows = frame[frame["person_id"] == pid]
    assert len(rows) == 1, f"{pid}: {len(rows)} rows"
    return rows.iloc[0].to_dict()


D = date(2025, 1, 1)


def random_tables(
    n_people: int = 200,
    seed: int = 7,
    start: date = date(2019, 1, 1),
    end: date = date(2026, 10, 31),
) -> dict[str, list[dict[str, str]]]:
    """A random but valid extract touching every feature: coded events from the code lists,
    all admission methods, services and teams, dated across `start`..`end`."""
    import random

    from features.codelists import bnf_groups, gp_concepts, hfrs_points
    from records import contract

    rng = random.Random(seed)
    span = (end - start).days

    def day(lo: date = start) -> date:
        return date.fromordinal(rng.randint(lo.toordinal(), lo.toordinal() + (end - lo).days))

    snomed = [code for _, code in gp_concepts()] + ["1240581000000104"]
    icd = [*hfrs_points(), "I21", "I500", "E112", "E119", "C509", "C780", "K703", "K704"]
    bnf = [p + "0AAAAA" for ps in bnf_groups().values() for p in ps] + [
        f"{c:02d}{s:02d}0{x}0AAAAAA" for c in (1, 2, 3) for s in (1, 2) for x in "ABC"
    ]
    tables: dict[str, list[dict[str, str]]] = {name: [] for name in TABLES}
    assert span > 0
    for i in range(n_people):
        pid = f"R{i:04d}"
        birth = date(rng.randint(1925, 1962), rng.randint(1, 12), 1)
        reg_start = day(date(2000, 1, 1)) if rng.random() < 0.3 else date(1995, 1, 1)
        death = day(date(2020, 1, 1)) if rng.random() < 0.15 else None
        last = death or end
        tables["people"].append(
            {
                "person_id": pid,
                "birth_date": birth.isoformat(),
                "sex": rng.choice(contract.SEX_CODES),
                "ethnic_category": rng.choice([*contract.ETHNIC_CODES, ""]),
                "imd_decile": str(rng.randint(1, 10)),
                "neighbourhood": rng.choice(["North", "South", "East"]),
                "registration_start": reg_start.isoformat(),
                "registration_end": day(max(reg_start, date(2021, 1, 1))).isoformat()
                if rng.random() < 0.1
                else "",
                "date_of_death": death.isoformat() if death else "",
                "data_opt_out": rng.choice(["Y", "N", "N", "N"]),
            }
        )

        def when(last: date = last) -> str:
            return date.fromordinal(rng.randint(start.toordinal(), last.toordinal())).isoformat()

        def later(first: str, p_open: float = 0.3, last: date = last) -> str:
            if rng.random() < p_open:
                return ""
            d0 = date.fromisoformat(first)
            return date.fromordinal(
                min(d0.toordinal() + rng.randint(0, 400), last.toordinal())
            ).isoformat()

        for _ in range(rng.randint(0, 40)):
            tables["gp_events"].append(
                {
                    "person_id": pid,
                    "event_date": when(),
                    "snomed_code": rng.choice(snomed),
                    "value": str(rng.randint(1, 9)),
                }
            )
        for _ in range(rng.randint(0, 40)):
            tables["prescriptions"].append(
                {"person_id": pid, "issue_date": when(), "bnf_code": rng.choice(bnf)}
            )
        for _ in range(rng.randint(0, 6)):
            adm = when()
            tables["hospital_spells"].append(
                {
                    "person_id": pid,
                    "admission_date": adm,
                    "discharge_date": later(adm, 0.05),
                    "admission_method": rng.choice(contract.ADMISSION_METHODS),
                    "diagnoses": ";".join(rng.sample(icd, rng.randint(1, 4))),
                    "discharge_destination": rng.choice(["19", "54", "65", "79", ""]),
                }
            )
        for _ in range(rng.randint(0, 6)):
            tables["ae_attendances"].append(
                {
                    "person_id": pid,
                    "arrival_date": when(),
                    "arrival_mode": rng.choice(["ambulance", "other"]),
                }
            )
        for _ in range(rng.randint(0, 6)):
            tables["outpatient_appointments"].append(
                {
                    "person_id": pid,
                    "appointment_date": when(),
                    "attendance": rng.choice(contract.ATTENDANCE),
                }
            )
        for _ in range(rng.randint(0, 20)):
            tables["community_contacts"].append(
                {
                    "person_id": pid,
                    "contact_date": when(),
                    "service": rng.choice(contract.COMMUNITY_SERVICES),
                }
            )
        for _ in range(rng.randint(0, 5)):
            first = when()
            kind = rng.choice(contract.SOCIAL_CARE_EVENTS)
            tables["social_care"].append(
                {
                    "person_id": pid,
                    "event_type": kind,
                    "start_date": first,
                    "end_date": later(first),
                    "hours_per_week": str(rng.randint(1, 30)),
                    "service_type": rng.choice(contract.SOCIAL_CARE_SERVICES)
                    if kind == "service"
                    else "",
                }
            )
        for _ in range(rng.randint(0, 5)):
            tables["mental_health_contacts"].append(
                {
                    "person_id": pid,
                    "contact_date": when(),
                    "team_type": rng.choice(contract.MH_TEAMS),
                }
            )
        for _ in range(rng.randint(0, 2)):
            first = when()
            tables["caseloads"].append(
                {
                    "person_id": pid,
                    "start_date": first,
                    "end_date": later(first),
                    "caseload": rng.choice(contract.CASELOADS),
                }
            )
    return tables
