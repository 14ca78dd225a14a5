"""Imports follow the layers: each package imports only the packages below it (README, "How data
flows"), wherever the import stands (module top, inside a function, or for type checking)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first. `records.contract` is the vocabulary (data only): any layer may read it.
LAYERS = ["config", "records", "synthetic", "features", "models", "training", "scoring",
          "serving", "casefinder"]  # fmt: skip
VOCABULARY = "records.contract"
RANK = {name: i for i, name in enumerate(LAYERS)}
# synthetic writes extracts in the contract and features reads them: neither imports the other.
SIDEWAYS = {("synthetic", "features"), ("features", "synthetic")}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _modules() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            graph[name.removesuffix(".__init__")] = _imports(path)
    return graph


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for module, imports in _modules().items():
        own = module.split(".")[0]
        for target in imports:
            top = target.split(".")[0]
            if top not in RANK or top == own or target.startswith(VOCABULARY):
                continue
            if RANK[top] > RANK[own] or (own, top) in SIDEWAYS:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_scoring_and_serving_never_import_training() -> None:
    graph = _modules()
    bad = [
        f"{m} imports {t}"
        for m, imports in graph.items()
        if m.split(".")[0] in ("scoring", "serving")
        for t in imports
        if t.split(".")[0] == "training"
    ]
    assert not bad, "\n".join(bad)


def test_no_import_circle_between_modules() -> None:
    graph = _modules()
    edges = {
        m: {t for t in imports if t in graph and t != m and not m.startswith(t + ".")}
        for m, imports in graph.items()
    }
    # A package's __init__ re-exporting its modules is not a circle.
    edges = {m: {t for t in ts if not (t.startswith(m + ".") or m.startswith(t))} for m, ts in
             edges.items()}  # fmt: skip
    seen: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if seen.get(nxt) == 1:
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(edges):
        if node not in seen:
            visit(node)
    assert not circles, "\n".join(circles)
