"""The risk model's MLflow pyfunc definition as code (MLflow's recommended "models from code"):
`models.flavour.log_risk_model` logs this file with every version instead of a pickled object.
Loading the version runs it; `RiskModelPyfunc.load_context` then reads the booster and
calibrator (`booster.txt`, `risk_model.json`) from the version's artifacts."""

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from models.flavour import ARTIFACT_KEY, load_risk_model_dir, pyfunc_output
from models.risk_model import RiskModel


class RiskModelPyfunc(mlflow.pyfunc.PythonModel):
    """MLflow pyfunc wrapper: input the feature columns, output probability, margin, band."""

    model: RiskModel | None = None

    def load_context(self, context: Any) -> None:
        self.model = load_risk_model_dir(Path(context.artifacts[ARTIFACT_KEY]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        if self.model is None:
            self.load_context(context)
        assert self.model is not None
        return pyfunc_output(self.model, model_input)


mlflow.models.set_model(RiskModelPyfunc())
