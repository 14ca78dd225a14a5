"""Strip outputs and execution counts from the notebooks, so they are stored clean.

    uv run python notebooks/clear_outputs.py            # every notebook in this folder
    uv run python notebooks/clear_outputs.py FILE ...   # only these

tests/test_notebooks.py fails while any stored notebook holds outputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def clear(path: Path) -> bool:
    """Remove outputs and execution counts from the notebook at `path`; True if it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.outputs or cell.execution_count is not None:
            cell.outputs, cell.execution_count = [], None
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(args: list[str]) -> int:
    paths = [Path(a) for a in args] or sorted(Path(__file__).resolve().parent.glob("*.ipynb"))
    for path in paths:
        print(f"{path}: {'cleared' if clear(path) else 'already clean'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
