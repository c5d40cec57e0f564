"""The layers of the tree, checked on every import statement (AST; lazy imports inside functions too).

    orchestrator   the command line and the demo: may import the three below and contracts
    sweeps         many runs on Ray: may import scaling and contracts
    scaling        one run (torch): may import contracts only
    analysis       laws and plans: may import contracts only; never torch or Ray
    contracts      the shared seams: the standard library only

No circle between top-level packages, and none between the modules of one package either.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = {
    "orchestrator": {"sweeps", "scaling", "analysis", "contracts"},
    "sweeps": {"scaling", "contracts"},
    "scaling": {"contracts"},
    "analysis": {"contracts"},
    "contracts": set(),
}
"""Project packages each top-level package may import (besides itself)."""

FORBIDDEN_LIBRARIES = {
    "scaling": {"ray"},
    "analysis": {"torch", "ray"},
    "contracts": {"*"},  # anything outside the standard library
}


def module_imports(path: Path, package_root: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import statement in the file, relative imports resolved."""
    rel = path.relative_to(package_root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    here = parts if path.name == "__init__.py" else parts[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from pkg import mod` names the module pkg.mod when there is one (resolved by the caller)
            out += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return out


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def check_layers(root: Path) -> list[str]:
    """Every import against the direction above, every circle between top-level packages and every
    circle between the modules of one package, as readable lines (empty when the tree is clean)."""
    problems: list[str] = []
    modules: dict[str, Path] = {}
    for pkg in ALLOWED:
        for path in sorted((root / pkg).rglob("*.py")) if (root / pkg).is_dir() else []:
            modules[module_name(path, root)] = path
    stdlib = set(sys.stdlib_module_names)
    package_edges: dict[str, set[str]] = {pkg: set() for pkg in ALLOWED}
    module_edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        pkg = name.split(".")[0]
        for target, line in module_imports(path, root):
            top = target.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {target}"
            if top in ALLOWED:
                if top != pkg:
                    package_edges[pkg].add(top)
                    if top not in ALLOWED[pkg]:
                        problems.append(f"{where}: {pkg} may not import {top}")
                # the deepest project module this import names
                parts = target.split(".")
                for k in range(len(parts), 0, -1):
                    candidate = ".".join(parts[:k])
                    if candidate in modules and candidate != name:
                        module_edges[name].add(candidate)
                        break
            else:
                banned = FORBIDDEN_LIBRARIES.get(pkg, set())
                if top in banned or ("*" in banned and top not in stdlib and top != "__future__"):
                    problems.append(f"{where}: {pkg} may not import the library {top}")
    problems += [f"circle between packages: {' -> '.join(c)}" for c in _cycles(package_edges)]
    within = {m: {t for t in ts if t.split(".")[0] == m.split(".")[0]} for m, ts in module_edges.items()}
    problems += [f"circle between modules: {' -> '.join(c)}" for c in _cycles(within)]
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One representative circle per strongly connected component of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_path_through(sorted(component), edges))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _path_through(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A closed walk start -> ... -> start inside one strongly connected component (breadth-first)."""
    start, members = component[0], set(component)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, ())):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start] + path[::-1][1:] + [start] if len(path) > 1 else [start, v, start]
                if w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    return component + [component[0]]


def test_the_project_tree_keeps_its_layers():
    problems = check_layers(ROOT)
    assert not problems, "\n".join(problems)


# --- the checker itself, on small trees it must reject ------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for pkg in ALLOWED:
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").touch()
    return tmp_path


def test_a_clean_tree_passes(tmp_path):
    root = _tree(tmp_path, {
        "orchestrator/cli.py": "import sweeps.launch\nfrom analysis import fit\n",
        "sweeps/launch.py": "import ray\nfrom scaling.train import train\n",
        "scaling/train.py": "import torch\nfrom contracts.runs_table import POINT_COLUMNS\n",
        "analysis/fit.py": "import numpy\nfrom . import laws\n",
        "analysis/laws.py": "import math\n",
    })
    assert check_layers(root) == []


@pytest.mark.parametrize("rel, text, expected", [
    ("scaling/train.py", "def f():\n    from sweeps import store\n", "scaling may not import sweeps"),
    ("analysis/plan.py", "import torch\n", "analysis may not import the library torch"),
    ("analysis/plan.py", "def f():\n    import ray.tune\n", "analysis may not import the library ray"),
    ("analysis/report.py", "from scaling.counting import param_counts\n", "analysis may not import scaling"),
    ("sweeps/design.py", "from orchestrator.cli import main\n", "sweeps may not import orchestrator"),
    ("contracts/counts.py", "import numpy as np\n", "contracts may not import the library numpy"),
    ("scaling/model.py", "from ..analysis import fit\n", "scaling may not import analysis"),
])
def test_a_forbidden_import_is_reported_with_its_file_and_line(tmp_path, rel, text, expected):
    root = _tree(tmp_path, {rel: text})
    problems = check_layers(root)
    assert any(expected in p and rel in p for p in problems), problems


def test_circles_are_reported_lazy_imports_included(tmp_path):
    root = _tree(tmp_path, {
        "scaling/train.py": "def run():\n    from scaling.ddp import spawn\n",
        "scaling/ddp.py": "def spawn():\n    from scaling import train\n",
    })
    problems = check_layers(root)
    assert any("circle between modules" in p and "scaling.ddp" in p and "scaling.train" in p for p in problems), problems
