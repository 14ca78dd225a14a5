"""Column buffers: rows are added as numpy chunks, one chunk per month, joined at the end."""

from __future__ import annotations

import numpy as np


class Rows:
    """Named columns built from chunks of equal length."""

    def __init__(self, *columns: str) -> None:
        self.columns = columns
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in columns}

    def add(self, **values: np.ndarray) -> None:
        sizes = {np.asarray(v).size for v in values.values()}
        if len(sizes) != 1 or set(values) != set(self.columns):
            raise ValueError(f"chunk must give every column once, all the same length: {sizes}")
        for name, v in values.items():
            v = np.asarray(v)
            if v.dtype == np.int64:  # day numbers and person indices fit in 32 bits
                v = v.astype(np.int32)
            self._chunks[name].append(v)

    def get(self, name: str) -> np.ndarray:
        parts = self._chunks[name]
        return np.concatenate(parts) if parts else np.zeros(0)

    def build(self) -> dict[str, np.ndarray]:
        out = {c: self.get(c) for c in self.columns}
        self._chunks = {c: [] for c in self.columns}
        return out
