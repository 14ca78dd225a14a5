"""The model inputs a run stores (person_id and the model's features as float, one row per
eligible person in person_id order), held in memory or spooled to a local Parquet file.

A DuckDB run holds its feature table in memory, so its inputs are a frame (`model_inputs`). On
Spark the month's feature table is streamed from the executors a partition at a time
(`records.spark.arrow_batches`) and its model inputs written to a spool file as they come
(`spool_inputs`), so the driver keeps only the columns the list rules read: `SpooledInputs`
reads the listed people's rows back for their reasons and hands the store the file a batch at a
time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from models.risk_model import RiskModel

SPOOL_BATCH_ROWS = 16_384  # rows read back at a time (about 16 MB of a 120-feature model)


def model_inputs(
    features: pd.DataFrame,
    model: RiskModel,
    values: np.ndarray | None = None,
    probability: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """person_id and the model's input features as float, in `features`' row order: what a run
    stores so that its scores can be explained without the extract. `values`: the float matrix
    the model scored (`model.matrix(features)`, made here when not given); `probability`: the
    run's, in the same order, to blank the inputs of people it keeps no score for
    (`withhold_unscored`)."""
    values = model.matrix(features) if values is None else values
    if probability is not None:
        values = _withheld(values, probability)
    inputs = pd.DataFrame(values, columns=model.feature_names, copy=False)
    inputs.insert(0, "person_id", features["person_id"].astype("string").to_numpy())
    return inputs


def _withheld(values: np.ndarray, probability: pd.Series | np.ndarray) -> np.ndarray:
    hidden = np.isnan(np.asarray(probability, dtype=float))
    if not hidden.any():
        return values
    out = values.copy()
    out[hidden] = np.nan
    return out


def withhold_unscored(inputs: pd.DataFrame, probability: pd.Series | np.ndarray) -> pd.DataFrame:
    """`inputs` with every value blanked for people the run keeps no score for (people who
    opted out of data use beyond direct care): their score cannot be recomputed from the store.
    `probability` is the run's, in the same row order."""
    columns = [c for c in inputs.columns if c != "person_id"]
    out = inputs.copy()
    out[columns] = _withheld(inputs[columns].to_numpy(dtype=float), probability)
    return out


@dataclass(frozen=True)
class SpooledInputs:
    """Model inputs in a local Parquet file (`spool_inputs`), `rows` rows in person_id order;
    with `probability` (the run's, same order) the rows it keeps no score for read back blank."""

    path: Path
    rows: int
    probability: np.ndarray | None = None

    def withheld(self, probability: pd.Series | np.ndarray) -> SpooledInputs:
        """These inputs as the run stores them: blank where `probability` is missing."""
        probability = np.asarray(probability, dtype=float)
        if len(probability) != self.rows:
            raise ValueError(f"{len(probability):,} probabilities for {self.rows:,} spooled rows")
        return replace(self, probability=probability)

    def batches(self) -> Iterator[pd.DataFrame]:
        """The inputs in row order, at most `SPOOL_BATCH_ROWS` rows at a time (at least one
        frame, empty when there are no rows)."""
        import pyarrow.parquet as pq

        start = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=SPOOL_BATCH_ROWS):
            frame = batch.to_pandas()
            if self.probability is not None:
                frame = withhold_unscored(frame, self.probability[start : start + len(frame)])
            start += len(frame)
            yield frame
        if start == 0:
            yield pq.read_schema(self.path).empty_table().to_pandas()

    def rows_at(self, positions: Iterable[int]) -> pd.DataFrame:
        """The inputs of the rows at `positions` (0-based, in the file's order), in that order."""
        wanted = np.asarray(list(positions), dtype=np.int64)
        order = np.argsort(wanted, kind="stable")
        ranked = wanted[order]
        parts, start = [], 0
        for frame in self.batches():
            lo, hi = np.searchsorted(ranked, [start, start + len(frame)])
            if hi > lo:
                parts.append(frame.iloc[ranked[lo:hi] - start])
            start += len(frame)
        if len(ranked) and (ranked[0] < 0 or ranked[-1] >= start):
            raise IndexError(f"positions outside the {start:,} spooled rows")
        found = pd.concat(parts) if parts else next(self.batches()).iloc[:0]
        out = found.iloc[np.argsort(order, kind="stable")]
        return out.reset_index(drop=True)


def spool_inputs(frames: Iterable[pd.DataFrame], model: RiskModel, path: Path) -> SpooledInputs:
    """Write the model inputs of each feature frame (in order) to the Parquet file `path` as it
    comes, holding one frame at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [pa.field("person_id", pa.string())]
        + [pa.field(name, pa.float64()) for name in model.feature_names]
    )
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for frame in frames:
            table = pa.Table.from_pandas(model_inputs(frame, model), schema, preserve_index=False)
            writer.write_table(table)
            rows += len(frame)
    return SpooledInputs(Path(path), rows)
