"""The functions Spark executors run travel by value: unpickled in a Python where no casefinder
package can be imported (only lightgbm, numpy, pandas and pyarrow), the scorer
(`models.spark_scoring.batch_scorer`) gives the driver's margin, probability, band and
contributions, and the packer that streams a table to the driver (`records.spark.batch_packer`)
keeps its rows."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
from test_scoring_support import feature_frame, train_model

from models.explain import contributions
from models.spark_scoring import BASE_COLUMN, batch_scorer, in_closure, model_payload

# Runs in a fresh interpreter that refuses to import any casefinder package.
WORKER = """
import pickle, sys
PACKAGES = {"config", "records", "synthetic", "features", "models", "training", "scoring",
            "serving", "casefinder", "tests"}

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PACKAGES:
            raise ImportError(f"executor imported casefinder module {name}")

sys.meta_path.insert(0, Refuse())
from pyspark import cloudpickle  # noqa: F401  (unpickles what pyspark's cloudpickle wrote)
score, batches = pickle.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(pickle.dumps([out for out in score(iter(batches))]))
"""


def test_the_executor_function_needs_no_casefinder_module_and_scores_as_the_driver() -> None:
    from pyspark import cloudpickle

    model = train_model(n=800)
    rows = feature_frame(120)
    score = batch_scorer(in_closure(model_payload(model)), ["person_id"], contributions=True)
    blob = cloudpickle.dumps((score, [rows.iloc[:70], rows.iloc[70:]]))
    done = subprocess.run(
        [sys.executable, "-c", WORKER], input=blob, capture_output=True, timeout=120, cwd="/"
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    out = pd.concat(pickle.loads(done.stdout), ignore_index=True)
    assert out["person_id"].tolist() == rows["person_id"].tolist()
    margin, probability = model.scores(rows)
    assert np.array_equal(out["margin"].to_numpy(), margin)
    assert np.array_equal(out["probability"].to_numpy(), probability)
    assert out["band"].tolist() == model.band(probability).tolist()
    base, values = contributions(model, rows, num_threads=1)
    names = [f"contribution_{n}" for n in model.feature_names]
    np.testing.assert_allclose(out[names].to_numpy(), values, rtol=1e-12, atol=1e-15)
    assert (out[BASE_COLUMN] == base).all()


def test_the_batch_packer_needs_no_casefinder_module_and_keeps_the_rows() -> None:
    """`records.spark.arrow_batches`' executor side (how `score` on Spark streams the month's
    table to the driver): each batch comes back whole, in order, from its IPC bytes."""
    import pyarrow as pa
    from pyspark import cloudpickle

    from records.spark import batch_packer

    rows = feature_frame(50)[["person_id", "age", "efi_score"]]
    batches = [pa.RecordBatch.from_pandas(rows.iloc[i : i + 20]) for i in (0, 20, 40)]
    blob = cloudpickle.dumps((batch_packer(), batches))
    done = subprocess.run(
        [sys.executable, "-c", WORKER], input=blob, capture_output=True, timeout=120, cwd="/"
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    packed = pickle.loads(done.stdout)
    assert [b.num_rows for b in packed] == [1, 1, 1]
    back = [pa.ipc.open_stream(b.column(0)[0].as_py()).read_next_batch() for b in packed]
    assert pa.Table.from_batches(back).to_pandas().equals(rows.reset_index(drop=True))
