"""Every feature's sentence at its edge values (zero, one, many, missing, each code), checked
against a table reviewed by hand: what a clinician reads on the lists, the pages and the CLI.

Adding a feature means adding its row here (the first test says which is missing).
"""

from __future__ import annotations

import math
import re

import pytest

import features
from models.explain import _sentence
from models.reasons import change_sentence, phrase

SENTENCES = {
    "age": [
        (65, "aged 65"),
        (66, "aged 66"),
        (101, "aged 101"),
    ],
    "sex": [
        (0, "sex not known"),
        (1, "sex: male"),
        (2, "sex: female"),
        (9, "sex: indeterminate"),
        (None, "sex not known"),
    ],
    "ethnicity_group": [
        (0, "ethnic group not known"),
        (1, "ethnic group: White"),
        (2, "ethnic group: Mixed or multiple"),
        (3, "ethnic group: Asian or Asian British"),
        (4, "ethnic group: Black or Black British"),
        (5, "ethnic group: Other ethnic group"),
        (None, "ethnic group not known"),
    ],
    "data_opt_out": [
        (0, "has not opted out"),
        (1, "has opted out of data use beyond direct care"),
    ],
    "imd_decile": [
        (1, "lives in an area in deprivation decile 1 (most deprived)"),
        (2, "lives in an area in deprivation decile 2"),
        (3, "lives in an area in deprivation decile 3"),
        (4, "lives in an area in deprivation decile 4"),
        (5, "lives in an area in deprivation decile 5"),
        (6, "lives in an area in deprivation decile 6"),
        (7, "lives in an area in deprivation decile 7"),
        (8, "lives in an area in deprivation decile 8"),
        (9, "lives in an area in deprivation decile 9"),
        (10, "lives in an area in deprivation decile 10 (least deprived)"),
        (None, "deprivation decile not known"),
    ],
    "neighbourhood_code": [
        (0, "where they live (their neighbourhood)"),
        (3, "where they live (their neighbourhood)"),
        (None, "neighbourhood not known"),
    ],
    "emergency_admissions_3m": [
        (0, "no emergency admissions in the last 3 months"),
        (1, "1 emergency admission in the last 3 months"),
        (2, "2 emergency admissions in the last 3 months"),
        (12, "12 emergency admissions in the last 3 months"),
    ],
    "emergency_admissions_6m": [
        (0, "no emergency admissions in the last 6 months"),
        (1, "1 emergency admission in the last 6 months"),
        (2, "2 emergency admissions in the last 6 months"),
        (12, "12 emergency admissions in the last 6 months"),
    ],
    "emergency_admissions_12m": [
        (0, "no emergency admissions in the last 12 months"),
        (1, "1 emergency admission in the last 12 months"),
        (2, "2 emergency admissions in the last 12 months"),
        (12, "12 emergency admissions in the last 12 months"),
    ],
    "emergency_admissions_36m": [
        (0, "no emergency admissions in the last 36 months"),
        (1, "1 emergency admission in the last 36 months"),
        (2, "2 emergency admissions in the last 36 months"),
        (12, "12 emergency admissions in the last 36 months"),
    ],
    "emergency_bed_days_12m": [
        (0, "no days in hospital after emergency admissions in the last 12 months"),
        (1, "1 day in hospital after emergency admissions in the last 12 months"),
        (2.5, "2.5 days in hospital after emergency admissions in the last 12 months"),
        (None, "no days in hospital after emergency admissions in the last 12 months"),
    ],
    "days_since_emergency_admission": [
        (None, "no emergency admission on record"),
        (1, "last emergency admission 1 day ago"),
        (30, "last emergency admission 30 days ago"),
        (400, "last emergency admission 13 months ago"),
        (1644, "last emergency admission about 5 years ago"),
    ],
    "days_in_hospital": [
        (None, "not in hospital"),
        (1, "in hospital for 1 day"),
        (30, "in hospital for 30 days"),
        (400, "in hospital for 13 months"),
        (1644, "in hospital for about 5 years"),
    ],
    "elective_admissions_12m": [
        (0, "no planned admissions in the last 12 months"),
        (1, "1 planned admission in the last 12 months"),
        (2, "2 planned admissions in the last 12 months"),
        (12, "12 planned admissions in the last 12 months"),
    ],
    "ae_attendances_12m": [
        (0, "no A&E attendances in the last 12 months"),
        (1, "1 A&E attendance in the last 12 months"),
        (2, "2 A&E attendances in the last 12 months"),
        (12, "12 A&E attendances in the last 12 months"),
    ],
    "ae_ambulance_arrivals_12m": [
        (0, "no ambulance arrivals at A&E in the last 12 months"),
        (1, "1 ambulance arrival at A&E in the last 12 months"),
        (2, "2 ambulance arrivals at A&E in the last 12 months"),
        (12, "12 ambulance arrivals at A&E in the last 12 months"),
    ],
    "days_since_ae_attendance": [
        (None, "no A&E attendance on record"),
        (1, "last A&E attendance 1 day ago"),
        (30, "last A&E attendance 30 days ago"),
        (400, "last A&E attendance 13 months ago"),
        (1644, "last A&E attendance about 5 years ago"),
    ],
    "outpatient_attendances_12m": [
        (0, "no outpatient appointments attended in the last 12 months"),
        (1, "1 outpatient appointment attended in the last 12 months"),
        (2, "2 outpatient appointments attended in the last 12 months"),
        (12, "12 outpatient appointments attended in the last 12 months"),
    ],
    "outpatient_dna_12m": [
        (0, "no missed outpatient appointments in the last 12 months"),
        (1, "1 missed outpatient appointment in the last 12 months"),
        (2, "2 missed outpatient appointments in the last 12 months"),
        (12, "12 missed outpatient appointments in the last 12 months"),
    ],
    "hfrs_score": [
        (0, "no frailty-related hospital diagnoses in 2 years"),
        (4.2, "Hospital Frailty Risk Score 4.2"),
        (49.4, "Hospital Frailty Risk Score 49.4"),
    ],
    "hfrs_band": [
        (0, "hospital frailty risk low (under 5)"),
        (1, "hospital frailty risk intermediate (5 to 15)"),
        (2, "hospital frailty risk high (over 15)"),
        (None, "hospital frailty risk not known"),
    ],
    "charlson_index": [
        (0, "no Charlson comorbidities in hospital records"),
        (1, "Charlson comorbidity index 1"),
        (2, "Charlson comorbidity index 2"),
        (12, "Charlson comorbidity index 12"),
    ],
    "efi_activity_limitation": [
        (0, "no activity limitation recorded"),
        (1, "activity limitation recorded (an eFI deficit)"),
    ],
    "efi_anaemia": [
        (0, "no anaemia or haematinic deficiency recorded"),
        (1, "anaemia or haematinic deficiency recorded (an eFI deficit)"),
    ],
    "efi_arthritis": [
        (0, "no arthritis recorded"),
        (1, "arthritis recorded (an eFI deficit)"),
    ],
    "efi_atrial_fibrillation": [
        (0, "no atrial fibrillation recorded"),
        (1, "atrial fibrillation recorded (an eFI deficit)"),
    ],
    "efi_cerebrovascular_disease": [
        (0, "no cerebrovascular disease recorded"),
        (1, "cerebrovascular disease recorded (an eFI deficit)"),
    ],
    "efi_chronic_kidney_disease": [
        (0, "no chronic kidney disease recorded"),
        (1, "chronic kidney disease recorded (an eFI deficit)"),
    ],
    "efi_diabetes": [
        (0, "no diabetes recorded"),
        (1, "diabetes recorded (an eFI deficit)"),
    ],
    "efi_dizziness": [
        (0, "no dizziness recorded"),
        (1, "dizziness recorded (an eFI deficit)"),
    ],
    "efi_dyspnoea": [
        (0, "no breathlessness recorded"),
        (1, "breathlessness recorded (an eFI deficit)"),
    ],
    "efi_falls": [
        (0, "no falls recorded"),
        (1, "falls recorded (an eFI deficit)"),
    ],
    "efi_foot_problems": [
        (0, "no foot problems recorded"),
        (1, "foot problems recorded (an eFI deficit)"),
    ],
    "efi_fragility_fracture": [
        (0, "no fragility fracture recorded"),
        (1, "fragility fracture recorded (an eFI deficit)"),
    ],
    "efi_hearing_impairment": [
        (0, "no hearing impairment recorded"),
        (1, "hearing impairment recorded (an eFI deficit)"),
    ],
    "efi_heart_failure": [
        (0, "no heart failure recorded"),
        (1, "heart failure recorded (an eFI deficit)"),
    ],
    "efi_heart_valve_disease": [
        (0, "no heart valve disease recorded"),
        (1, "heart valve disease recorded (an eFI deficit)"),
    ],
    "efi_housebound": [
        (0, "not recorded as housebound"),
        (1, "recorded as housebound (an eFI deficit)"),
    ],
    "efi_hypertension": [
        (0, "no hypertension recorded"),
        (1, "hypertension recorded (an eFI deficit)"),
    ],
    "efi_hypotension_syncope": [
        (0, "no low blood pressure or fainting recorded"),
        (1, "low blood pressure or fainting recorded (an eFI deficit)"),
    ],
    "efi_ischaemic_heart_disease": [
        (0, "no ischaemic heart disease recorded"),
        (1, "ischaemic heart disease recorded (an eFI deficit)"),
    ],
    "efi_memory_cognitive_problems": [
        (0, "no memory or cognitive problems recorded"),
        (1, "memory or cognitive problems recorded (an eFI deficit)"),
    ],
    "efi_mobility_transfer_problems": [
        (0, "no mobility and transfer problems recorded"),
        (1, "mobility and transfer problems recorded (an eFI deficit)"),
    ],
    "efi_osteoporosis": [
        (0, "no osteoporosis recorded"),
        (1, "osteoporosis recorded (an eFI deficit)"),
    ],
    "efi_parkinsonism_tremor": [
        (0, "no parkinsonism or tremor recorded"),
        (1, "parkinsonism or tremor recorded (an eFI deficit)"),
    ],
    "efi_peptic_ulcer": [
        (0, "no peptic ulcer recorded"),
        (1, "peptic ulcer recorded (an eFI deficit)"),
    ],
    "efi_peripheral_vascular_disease": [
        (0, "no peripheral vascular disease recorded"),
        (1, "peripheral vascular disease recorded (an eFI deficit)"),
    ],
    "efi_requirement_for_care": [
        (0, "not recorded as needing help with care"),
        (1, "recorded as needing help with care (an eFI deficit)"),
    ],
    "efi_respiratory_disease": [
        (0, "no respiratory disease recorded"),
        (1, "respiratory disease recorded (an eFI deficit)"),
    ],
    "efi_skin_ulcer": [
        (0, "no skin ulcer recorded"),
        (1, "skin ulcer recorded (an eFI deficit)"),
    ],
    "efi_sleep_disturbance": [
        (0, "no sleep disturbance recorded"),
        (1, "sleep disturbance recorded (an eFI deficit)"),
    ],
    "efi_social_vulnerability": [
        (0, "no social vulnerability recorded"),
        (1, "social vulnerability recorded (an eFI deficit)"),
    ],
    "efi_thyroid_disease": [
        (0, "no thyroid disease recorded"),
        (1, "thyroid disease recorded (an eFI deficit)"),
    ],
    "efi_urinary_incontinence": [
        (0, "no urinary incontinence recorded"),
        (1, "urinary incontinence recorded (an eFI deficit)"),
    ],
    "efi_urinary_system_disease": [
        (0, "no urinary system disease recorded"),
        (1, "urinary system disease recorded (an eFI deficit)"),
    ],
    "efi_visual_impairment": [
        (0, "no visual impairment recorded"),
        (1, "visual impairment recorded (an eFI deficit)"),
    ],
    "efi_weight_loss_anorexia": [
        (0, "no weight loss or poor appetite recorded"),
        (1, "weight loss or poor appetite recorded (an eFI deficit)"),
    ],
    "efi_deficits_12m_ago": [
        (0, "no eFI deficits 12 months ago"),
        (1, "1 eFI deficit 12 months ago"),
        (2, "2 eFI deficits 12 months ago"),
        (12, "12 eFI deficits 12 months ago"),
    ],
    "efi_score": [
        (0, "no eFI deficits recorded"),
        (0.027777777777777776, "electronic frailty index 0.03"),
        (0.25, "electronic frailty index 0.25"),
        (1, "electronic frailty index 1"),
    ],
    "efi_band": [
        (0, "eFI category: fit"),
        (1, "eFI category: mild frailty"),
        (2, "eFI category: moderate frailty"),
        (3, "eFI category: severe frailty"),
        (None, "eFI category not known"),
    ],
    "efi_change_12m": [
        (0, "no change in electronic frailty index in the last 12 months"),
        (0.08333333333333333, "change in electronic frailty index over the last 12 months: 0.08"),
        (
            -0.027777777777777776,
            "change in electronic frailty index over the last 12 months: -0.03",
        ),
    ],
    "long_term_conditions": [
        (0, "no long-term conditions recorded"),
        (1, "1 long-term condition"),
        (2, "2 long-term conditions"),
        (12, "12 long-term conditions"),
    ],
    "falls_12m": [
        (0, "no falls recorded in the last 12 months"),
        (1, "1 fall recorded in the last 12 months"),
        (2, "2 falls recorded in the last 12 months"),
        (12, "12 falls recorded in the last 12 months"),
    ],
    "clinical_frailty_scale": [
        (1, "Clinical Frailty Scale score 1"),
        (9, "Clinical Frailty Scale score 9"),
        (None, "no Clinical Frailty Scale score recorded"),
    ],
    "frailty_diagnosis": [
        (0, "no frailty diagnosis coded by the GP practice"),
        (1, "mild frailty coded by the GP practice"),
        (2, "moderate frailty coded by the GP practice"),
        (3, "severe frailty coded by the GP practice"),
        (None, "no frailty diagnosis coded by the GP practice"),
    ],
    "distinct_medicines_3m": [
        (0, "no medicines issued in the last 3 months"),
        (1, "1 different medicine in the last 3 months"),
        (2, "2 different medicines in the last 3 months"),
        (12, "12 different medicines in the last 3 months"),
    ],
    "bnf_sections_3m": [
        (0, "no medicines issued in the last 3 months"),
        (1, "medicines from 1 BNF section in the last 3 months"),
        (2, "medicines from 2 BNF sections in the last 3 months"),
        (12, "medicines from 12 BNF sections in the last 3 months"),
    ],
    "polypharmacy_5": [
        (0, "fewer than 5 different medicines in the last 3 months"),
        (1, "5 or more different medicines in the last 3 months"),
    ],
    "polypharmacy_10": [
        (0, "fewer than 10 different medicines in the last 3 months"),
        (1, "10 or more different medicines in the last 3 months"),
    ],
    "rx_opioids_3m": [
        (0, "no opioid painkillers prescribed in the last 3 months"),
        (1, "prescribed opioid painkillers in the last 3 months"),
    ],
    "rx_anticoagulants_3m": [
        (0, "no anticoagulants (blood thinners) prescribed in the last 3 months"),
        (1, "prescribed anticoagulants (blood thinners) in the last 3 months"),
    ],
    "rx_antiplatelets_3m": [
        (
            0,
            "no antiplatelet medicines (e.g. aspirin, clopidogrel) prescribed in the last 3 months",
        ),
        (
            1,
            "prescribed antiplatelet medicines (e.g. aspirin, clopidogrel) in the last 3 months",
        ),
    ],
    "rx_antipsychotics_3m": [
        (0, "no antipsychotics prescribed in the last 3 months"),
        (1, "prescribed antipsychotics in the last 3 months"),
    ],
    "rx_diuretics_3m": [
        (0, "no diuretics (water tablets) prescribed in the last 3 months"),
        (1, "prescribed diuretics (water tablets) in the last 3 months"),
    ],
    "rx_hypnotics_anxiolytics_3m": [
        (0, "no sleeping tablets or anxiety medicines prescribed in the last 3 months"),
        (1, "prescribed sleeping tablets or anxiety medicines in the last 3 months"),
    ],
    "rx_antidepressants_3m": [
        (0, "no antidepressants prescribed in the last 3 months"),
        (1, "prescribed antidepressants in the last 3 months"),
    ],
    "rx_antiepileptics_3m": [
        (0, "no antiepileptic medicines prescribed in the last 3 months"),
        (1, "prescribed antiepileptic medicines in the last 3 months"),
    ],
    "rx_dementia_drugs_3m": [
        (0, "no dementia medicines prescribed in the last 3 months"),
        (1, "prescribed dementia medicines in the last 3 months"),
    ],
    "rx_insulin_3m": [
        (0, "no insulin prescribed in the last 3 months"),
        (1, "prescribed insulin in the last 3 months"),
    ],
    "rx_oral_antidiabetics_3m": [
        (0, "no diabetes tablets prescribed in the last 3 months"),
        (1, "prescribed diabetes tablets in the last 3 months"),
    ],
    "rx_oral_corticosteroids_3m": [
        (0, "no steroid tablets (oral corticosteroids) prescribed in the last 3 months"),
        (1, "prescribed steroid tablets (oral corticosteroids) in the last 3 months"),
    ],
    "rx_nsaids_3m": [
        (0, "no anti-inflammatory painkillers (NSAIDs) prescribed in the last 3 months"),
        (1, "prescribed anti-inflammatory painkillers (NSAIDs) in the last 3 months"),
    ],
    "high_risk_medicine_groups_3m": [
        (0, "no high-risk medicines in the last 3 months"),
        (1, "medicines from 1 high-risk group in the last 3 months"),
        (2, "medicines from 2 high-risk groups in the last 3 months"),
        (12, "medicines from 12 high-risk groups in the last 3 months"),
    ],
    "district_nursing_contacts_12m": [
        (0, "no district nursing contacts in the last 12 months"),
        (1, "1 district nursing contact in the last 12 months"),
        (2, "2 district nursing contacts in the last 12 months"),
        (12, "12 district nursing contacts in the last 12 months"),
    ],
    "community_matron_contacts_12m": [
        (0, "no community matron contacts in the last 12 months"),
        (1, "1 community matron contact in the last 12 months"),
        (2, "2 community matron contacts in the last 12 months"),
        (12, "12 community matron contacts in the last 12 months"),
    ],
    "community_therapy_contacts_12m": [
        (0, "no community therapy contacts in the last 12 months"),
        (1, "1 community therapy contact in the last 12 months"),
        (2, "2 community therapy contacts in the last 12 months"),
        (12, "12 community therapy contacts in the last 12 months"),
    ],
    "falls_contacts_12m": [
        (0, "no falls service contacts in the last 12 months"),
        (1, "1 falls service contact in the last 12 months"),
        (2, "2 falls service contacts in the last 12 months"),
        (12, "12 falls service contacts in the last 12 months"),
    ],
    "intermediate_care_contacts_12m": [
        (0, "no intermediate care contacts in the last 12 months"),
        (1, "1 intermediate care contact in the last 12 months"),
        (2, "2 intermediate care contacts in the last 12 months"),
        (12, "12 intermediate care contacts in the last 12 months"),
    ],
    "palliative_contacts_12m": [
        (0, "no palliative care contacts in the last 12 months"),
        (1, "1 palliative care contact in the last 12 months"),
        (2, "2 palliative care contacts in the last 12 months"),
        (12, "12 palliative care contacts in the last 12 months"),
    ],
    "community_contacts_12m": [
        (0, "no community health contacts in the last 12 months"),
        (1, "1 community health contact in the last 12 months"),
        (2, "2 community health contacts in the last 12 months"),
        (12, "12 community health contacts in the last 12 months"),
    ],
    "days_since_community_contact": [
        (None, "no community health contact on record"),
        (1, "last community health contact 1 day ago"),
        (30, "last community health contact 30 days ago"),
        (400, "last community health contact 13 months ago"),
        (1644, "last community health contact about 5 years ago"),
    ],
    "long_term_service": [
        (0, "no long-term social care service"),
        (1, "receives a long-term social care service"),
    ],
    "social_care_service_type": [
        (0, "no long-term social care service"),
        (1, "long-term social care: home care"),
        (2, "long-term social care: direct payment"),
        (3, "long-term social care: residential care"),
        (4, "long-term social care: nursing care"),
        (None, "no long-term social care service"),
    ],
    "care_hours_per_week": [
        (0, "no hours of social care a week"),
        (1, "1 hour of social care a week"),
        (2.5, "2.5 hours of social care a week"),
        (None, "no hours of social care a week"),
    ],
    "home_care_hours_per_week": [
        (0, "no home care"),
        (1, "home care, 1 hour a week"),
        (2.5, "home care, 2.5 hours a week"),
        (None, "no home care"),
    ],
    "direct_payment_current": [
        (0, "no social care direct payment"),
        (1, "has a social care direct payment"),
    ],
    "social_care_assessments_12m": [
        (0, "no social care assessments in the last 12 months"),
        (1, "1 social care assessment in the last 12 months"),
        (2, "2 social care assessments in the last 12 months"),
        (12, "12 social care assessments in the last 12 months"),
    ],
    "social_care_requests_12m": [
        (0, "no requests for social care support in the last 12 months"),
        (1, "1 request for social care support in the last 12 months"),
        (2, "2 requests for social care support in the last 12 months"),
        (12, "12 requests for social care support in the last 12 months"),
    ],
    "reablement_12m": [
        (0, "no reablement in the last 12 months"),
        (1, "1 reablement episode in the last 12 months"),
        (2, "2 reablement episodes in the last 12 months"),
        (12, "12 reablement episodes in the last 12 months"),
    ],
    "carer_support": [
        (0, "no carer support from social care"),
        (1, "their carer has support from social care"),
    ],
    "days_since_social_care_assessment": [
        (None, "no social care assessment on record"),
        (1, "last social care assessment 1 day ago"),
        (30, "last social care assessment 30 days ago"),
        (400, "last social care assessment 13 months ago"),
        (1644, "last social care assessment about 5 years ago"),
    ],
    "in_care_home": [
        (0, "not known to live in a care home"),
        (1, "lives in a care home"),
    ],
    "dementia": [
        (0, "no dementia diagnosis recorded"),
        (1, "has a dementia diagnosis"),
    ],
    "memory_service": [
        (0, "not seen by a memory service"),
        (1, "has been seen by a memory service"),
    ],
    "mental_health_contacts_12m": [
        (0, "no mental health contacts in the last 12 months"),
        (1, "1 mental health contact in the last 12 months"),
        (2, "2 mental health contacts in the last 12 months"),
        (12, "12 mental health contacts in the last 12 months"),
    ],
    "mh_crisis_contacts_12m": [
        (0, "no mental health crisis contacts in the last 12 months"),
        (1, "1 mental health crisis contact in the last 12 months"),
        (2, "2 mental health crisis contacts in the last 12 months"),
        (12, "12 mental health crisis contacts in the last 12 months"),
    ],
    "older_adult_cmht_contacts_12m": [
        (0, "no older adults' mental health team contacts in the last 12 months"),
        (1, "1 older adults' mental health team contact in the last 12 months"),
        (2, "2 older adults' mental health team contacts in the last 12 months"),
        (12, "12 older adults' mental health team contacts in the last 12 months"),
    ],
    "days_since_mental_health_contact": [
        (None, "no mental health contact on record"),
        (1, "last mental health contact 1 day ago"),
        (30, "last mental health contact 30 days ago"),
        (400, "last mental health contact 13 months ago"),
        (1644, "last mental health contact about 5 years ago"),
    ],
    "on_caseload_neighbourhood_mdt": [
        (0, "not on the neighbourhood MDT caseload"),
        (1, "already on the neighbourhood MDT caseload"),
    ],
    "on_caseload_end_of_life": [
        (0, "not on an end-of-life caseload"),
        (1, "already on an end-of-life caseload"),
    ],
    "on_caseload_community_matron": [
        (0, "not on a community matron caseload"),
        (1, "already on a community matron caseload"),
    ],
    "on_caseload_care_home_support": [
        (0, "not on a care home support caseload"),
        (1, "already on a care home support caseload"),
    ],
}


def test_every_feature_has_its_edge_values_in_the_table():
    assert [f.name for f in features.FEATURES] == list(SENTENCES)


@pytest.mark.parametrize("name", list(SENTENCES))
def test_sentence_at_each_edge_value_is_the_reviewed_text(name):
    f = features.feature(name)
    for value, expected in SENTENCES[name]:
        assert phrase(f, value) == expected, (name, value)
        if value is None and f.kind in ("count", "flag", "number", "days_since"):
            assert phrase(f, math.nan) == expected


def test_no_sentence_shows_a_code_a_placeholder_or_an_identifier():
    for name, cases in SENTENCES.items():
        for _, text in cases:
            assert "{" not in text and "_" not in text, (name, text)
            assert not re.search(r"\bteam \d|\bcode \d|\.0\b|nan|None", text), (name, text)
            assert "  " not in text and text == text.strip()


def test_absent_values_read_as_absent_and_present_ones_never_do():
    for f in features.FEATURES:
        for value, text in SENTENCES[f.name]:
            assert (text == f.none_sentence) == f.is_none(value), (f.name, value)


def test_change_lines_are_built_from_the_sentences():
    def f(name):
        return features.feature(name)

    assert change_sentence(f("community_therapy_contacts_12m"), 1, 0) == (
        "community therapy contacts in the last 12 months: 1 → 0"
    )
    assert change_sentence(f("age"), 85, 86) == "aged 85 → 86"
    assert change_sentence(f("falls_12m"), 0, 2) == "falls recorded in the last 12 months: 0 → 2"
    assert change_sentence(f("rx_nsaids_3m"), 0, 1) == (
        "new: prescribed anti-inflammatory painkillers (NSAIDs) in the last 3 months"
    )
    assert change_sentence(f("social_care_service_type"), 1, 4) == (
        "long-term social care: home care → nursing care"
    )
    assert change_sentence(f("social_care_service_type"), 0, 1) == (
        "new: long-term social care: home care"
    )
    assert change_sentence(f("days_since_ae_attendance"), 30, 400) == (
        "last A&E attendance 30 days ago → 13 months ago"
    )
    unchanged = change_sentence(f("efi_score"), 0.25, 0.25)
    assert unchanged.endswith("(unchanged; weighs differently alongside other changes)")
    for feat in features.FEATURES:  # from the sentences, never the dictionary description
        (before, _), (after, _) = SENTENCES[feat.name][-2:]
        line = change_sentence(feat, before, after)
        assert " rose from " not in line and " fell from " not in line
        assert line[0].islower() or feat.sentence[0].isupper() or feat.sentence[0] == "{", line


def test_a_concept_reason_adds_its_brief_of_another_feature():
    names = [f.name for f in features.FEATURES]
    feats = list(features.FEATURES)
    values = [0.0] * len(feats)
    values[names.index("emergency_admissions_12m")] = 3
    values[names.index("emergency_admissions_36m")] = 5
    main = names.index("emergency_admissions_12m")
    briefs = [
        j for j, f in enumerate(feats) if f.concept_name == feats[main].concept_name and f.brief
    ]
    assert _sentence(feats, main, briefs, values) == (
        "3 emergency admissions in the last 12 months (5 emergency admissions in 3 years)"
    )
