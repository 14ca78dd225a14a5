"""The codes the generator writes: SNOMED CT from the code lists, BNF, ICD-10, specialties.

SNOMED CT concepts come from features/codelists (eFI deficits, long-term conditions, frailty
observations). BNF codes are 9-character chemical-substance codes whose chapter/section/paragraph
prefixes are the real BNF structure used by features/codelists/bnf_groups.csv; ICD-10 codes are
real codes chosen so that the Hospital Frailty Risk Score (Gilbert 2018) and Charlson lists match.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

CODELISTS = Path(__file__).resolve().parents[1] / "features" / "codelists"

CFS = "763264000"  # Clinical Frailty Scale score (value 1-9)
FRAILTY_CODES = {2: "925791000000100", 4: "925831000000107", 5: "925861000000102"}  # mild/mod/sev
BMI = "60621009"
WEIGHT = "27113001"
DEMENTIA_CODES = ("52448006", "26929004")  # dementia, Alzheimer's disease
MEMORY_DEFICIT = "memory_cognitive_problems"
# Long-term conditions outside the eFI deficits: (snomed, prevalence at 60+, ICD-10 in spells)
OTHER_CONDITIONS = (
    ("363346000", 0.08, "C61"),  # malignant neoplasm
    ("35489007", 0.10, "F32.9"),  # depression
    ("84757009", 0.012, "G40.9"),  # epilepsy
    ("58214004", 0.006, "F20.9"),  # schizophrenia
)

# Deficit -> ICD-10 code written as a secondary diagnosis when the deficit is coded.
DEFICIT_ICD10 = {
    "atrial_fibrillation": "I48.9",
    "cerebrovascular_disease": "I69.3",
    "chronic_kidney_disease": "N18.3",
    "diabetes": "E11.9",
    "heart_failure": "I50.0",
    "hypertension": "I10",
    "ischaemic_heart_disease": "I25.9",
    "peripheral_vascular_disease": "I73.9",
    "respiratory_disease": "J44.9",
    "osteoporosis": "M81.9",
    "parkinsonism_tremor": "G20",
    "urinary_incontinence": "R32",
    "hearing_impairment": "H91.9",
    "visual_impairment": "H54.7",
    "anaemia": "D64.9",
    "thyroid_disease": "E03.9",
    "peptic_ulcer": "K25.9",
    "arthritis": "M19.9",
    "skin_ulcer": "L89.9",
    MEMORY_DEFICIT: "F03",
}
# How often each deficit is among a person's first ones (relative weight).
DEFICIT_WEIGHTS = {
    "hypertension": 6.0,
    "arthritis": 4.0,
    "visual_impairment": 3.0,
    "hearing_impairment": 3.0,
    "diabetes": 2.5,
    "ischaemic_heart_disease": 2.0,
    "respiratory_disease": 2.0,
    "atrial_fibrillation": 1.5,
    "chronic_kidney_disease": 1.5,
    "thyroid_disease": 1.5,
    "sleep_disturbance": 1.5,
    "urinary_system_disease": 1.5,
    "dizziness": 1.2,
    "osteoporosis": 1.2,
    "falls": 1.2,
}

# Repeat medicines (BNF chemical substance codes) with relative weights.
REPEAT_MEDICINES = (
    ("0212000B0", 6.0),  # atorvastatin (statins 2.12)
    ("0212000Y0", 2.0),  # simvastatin
    ("0206020A0", 4.0),  # amlodipine (calcium channel blockers 2.6.2)
    ("0205051R0", 3.5),  # ramipril (ACE inhibitors 2.5.5.1)
    ("0205052N0", 1.5),  # losartan (angiotensin-II receptor blockers 2.5.5.2)
    ("0204000H0", 3.0),  # bisoprolol (beta-blockers 2.4)
    ("0202020L0", 2.0),  # furosemide (loop diuretics 2.2.2)
    ("0202010B0", 1.5),  # bendroflumethiazide (thiazides 2.2.1)
    ("0208020Z0", 2.0),  # apixaban (oral anticoagulants 2.8.2)
    ("0208020V0", 0.7),  # warfarin
    ("0209000A0", 2.0),  # aspirin (antiplatelets 2.9)
    ("0209000C0", 1.2),  # clopidogrel
    ("0103050P0", 3.5),  # omeprazole (proton pump inhibitors 1.3.5)
    ("0103050L0", 2.0),  # lansoprazole
    ("0601022B0", 2.5),  # metformin (oral antidiabetics 6.1.2)
    ("0601021M0", 0.8),  # gliclazide
    ("0601012V0", 0.5),  # insulin (6.1.1)
    ("0602010V0", 2.0),  # levothyroxine (6.2.1)
    ("0403030Q0", 1.5),  # sertraline (antidepressants 4.3)
    ("0403040W0", 1.0),  # mirtazapine
    ("0401010Z0", 0.7),  # zopiclone (hypnotics and anxiolytics 4.1)
    ("0407020B0", 0.8),  # buprenorphine (opioid analgesics 4.7.2)
    ("0407020Q0", 0.5),  # morphine
    ("0407010H0", 3.0),  # paracetamol (non-opioid analgesics 4.7.1)
    ("0408010AE", 1.0),  # pregabalin (antiepileptics 4.8)
    ("0301011R0", 1.5),  # salbutamol (bronchodilators 3.1)
    ("0302000N0", 1.0),  # inhaled corticosteroid (3.2)
    ("0606020A0", 1.2),  # alendronic acid (bisphosphonates 6.6.2)
    ("0906040G0", 2.0),  # colecalciferol (vitamin D 9.6.4)
    ("0106040M0", 1.5),  # lactulose (laxatives 1.6)
    ("0704010U0", 1.5),  # tamsulosin (drugs for urinary retention 7.4.1)
)
DEMENTIA_MEDICINE = "0411000D0"  # donepezil (drugs for dementia 4.11)
ANTIPSYCHOTIC = "0402010J0"  # risperidone (antipsychotics 4.2.1)
ACUTE_MEDICINES = (
    ("0501013B0", 4.0),  # amoxicillin
    ("0501130R0", 2.0),  # nitrofurantoin
    ("0501030I0", 1.5),  # doxycycline
    ("0501080W0", 1.5),  # trimethoprim
    ("0603020T0", 1.5),  # prednisolone (oral corticosteroids 6.3.2)
    ("1001010P0", 1.0),  # naproxen (NSAIDs 10.1.1)
)

# Emergency admission primary diagnoses: (code, "frailty-related" flag). Frailty-related codes
# are in the Hospital Frailty Risk Score list.
EMERGENCY_ACUTE = ("I21.4", "I48.9", "J44.1", "K92.2", "R07.4", "J18.9", "N17.9", "I63.9",
                   "I50.0", "K80.2", "R10.4", "L03.1", "A41.9")  # fmt: skip
EMERGENCY_FRAILTY = ("S72.0", "R29.6", "N39.0", "F05.9", "E86", "R55", "J69.0", "R41.0",
                     "E87.1", "S06.0", "S42.2", "L89.9")  # fmt: skip
# Secondary codes from the HFRS list, more of them the frailer the person.
HFRS_SECONDARY = ("R26.8", "Z74.1", "Z75.1", "R54", "W19", "W18", "W06", "R32", "L89.9",
                  "F05.9", "E86", "N39.0", "R29.6", "Z99.3", "Z91.8", "R41.8", "Z87.8",
                  "M25.5", "R44.3", "H54.7")  # fmt: skip
ELECTIVE = ("H25.9", "M17.1", "M16.1", "K40.9", "N40", "C18.9", "Z51.1", "I25.1", "K57.3",
            "R31", "D12.6", "H26.9")  # fmt: skip
EMERGENCY_METHODS = (
    ("21", 0.70), ("22", 0.10), ("23", 0.02), ("24", 0.05), ("25", 0.01),
    ("2A", 0.03), ("2B", 0.03), ("2C", 0.01), ("2D", 0.03), ("28", 0.02),
)  # fmt: skip
ELECTIVE_METHODS = (("11", 0.6), ("12", 0.3), ("13", 0.1))
# Treatment function codes (NHS Data Dictionary) with weights.
SPECIALTIES = (("430", 1.5), ("300", 2.0), ("320", 2.0), ("101", 1.2), ("110", 2.0),
               ("130", 2.5), ("340", 1.0), ("370", 0.8), ("400", 0.6), ("410", 0.8),
               ("301", 1.0), ("502", 0.5), ("303", 0.8))  # fmt: skip


@cache
def deficit_codes() -> dict[str, tuple[str, ...]]:
    """eFI deficit -> its SNOMED CT codes (features/codelists/efi_deficits.csv)."""
    out: dict[str, list[str]] = {}
    with (CODELISTS / "efi_deficits.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["deficit"], []).append(row["snomed_code"])
    return {k: tuple(v) for k, v in out.items()}
