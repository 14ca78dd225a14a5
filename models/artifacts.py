"""Where each thing a training run keeps lives inside the run, named once.

Training writes every one of these paths (`training.run_log`); `models.registry`, the tests and
the notebooks read them back by these names, never by a literal. Paths are relative to the run's
artifact root (docs/training.md, "What a run holds").
"""

from __future__ import annotations

# The logged MLflow pyfunc model (models/flavour.py), registered as a version.
MODEL_NAME = "risk_model"

# data/: where the rows came from and copies of rows (no person ids).
EXTRACT_RECORD = "data/extract.json"  # manifest, counts, outcome, population
TRAINING_SETTINGS = "data/training_settings.json"  # the [training] section used
TRAINING_SAMPLE = "data/training_sample.parquet"  # drift reference (models.registry)
TEST_SET = "data/test_set.parquet"  # the promotion gate re-scores these

# evaluation/: the test-period evaluation.
COMPARISON = "evaluation/comparison.csv"  # model and baselines, with AUROC gains
DECILES = "evaluation/deciles.csv"  # observed/expected by risk decile
SHAP_IMPORTANCE = "evaluation/shap_importance.csv"  # mean |SHAP| per feature
EVALUATION = "evaluation/evaluation.json"  # metrics, oracle, list shares, counts, flags

# fairness/: metrics by group.
FAIRNESS = "fairness/fairness.csv"
FAIRNESS_TABLE = "fairness/fairness_table.json"  # the same, as an MLflow table

# plots/: one PNG per figure, keyed by figure.
PLOTS_DIR = "plots"
PLOTS: dict[str, str] = {
    name: f"{PLOTS_DIR}/{name}.png"
    for name in ("roc", "precision_recall", "calibration", "decile_oe", "shap_importance")
}

# The model card (also the registered version's description).
MODEL_CARD = "model_card.md"

# Every file a run writes beside the model (all but PLOTS, listed above).
FILES: tuple[str, ...] = (
    EXTRACT_RECORD,
    TRAINING_SETTINGS,
    TRAINING_SAMPLE,
    TEST_SET,
    COMPARISON,
    DECILES,
    SHAP_IMPORTANCE,
    EVALUATION,
    FAIRNESS,
    FAIRNESS_TABLE,
    MODEL_CARD,
)
