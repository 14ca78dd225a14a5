"""The bottom layer every stage may import: settings and the progress-callback type.

It imports no stage package (only `records.contract`, the vocabulary its defaults are built from).
"""

import os

# MLflow 3 sends usage telemetry to its developers' servers unless told not to
# (`MLFLOW_DISABLE_TELEMETRY`, read when mlflow is imported). casefinder runs beside health
# records and sends nothing anywhere: off in every process that imports casefinder, unless the
# environment says otherwise.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
