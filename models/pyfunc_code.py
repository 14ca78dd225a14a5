"""The risk model's MLflow pyfunc definition as code (MLflow's recommended "models from code"):
`models.flavour.log_risk_model` logs this file with every version instead of a pickled object.
Loading the version runs it; `RiskModelPyfunc.load_context` then reads the booster and
calibrator (`booster.txt`, `risk_model.json`) from the version's artifacts."""

import mlflow

from models.flavour import RiskModelPyfunc

mlflow.models.set_model(RiskModelPyfunc())
