"""The floors of the project, checked on the source with ``ast``: ``core`` serves and imports
neither ``training``, ``pages`` nor streamlit; ``pages`` never imports ``training``; and no two
project modules import each other, directly or round a longer loop.

Every import counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.config import PROJECT_DIR

PACKAGES = ("core", "training", "pages", "bench", "serving")
FORBIDDEN = {"core": ("training", "pages", "bench", "serving", "streamlit", "ray"),
             "pages": ("training", "ray"), "serving": ("pages", "training", "streamlit")}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path) -> dict[str, Path]:
    modules = {module_name(path, root): path for package in PACKAGES for path in (root / package).rglob("*.py")}
    if (root / "streamlit_app.py").is_file():
        modules["streamlit_app"] = root / "streamlit_app.py"
    return modules


def imported_names(path: Path, module: str, is_package: bool, known: frozenset[str] = frozenset()) -> set[str]:
    """Every module ``path`` imports: ``import a.b`` gives a.b; ``from a import b`` gives a.b where
    that is one of the ``known`` modules and a otherwise; relative imports are resolved."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                         for alias in node.names)
    return names


def import_graph(root: Path) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (external packages are left out)."""
    modules = project_modules(root)
    graph = {}
    for module, path in modules.items():
        targets = imported_names(path, module, path.name == "__init__.py", frozenset(modules))
        graph[module] = {target for target in targets if target in modules and target != module}
    return graph


def external_imports(root: Path, package: str) -> dict[str, set[str]]:
    """Module of ``package`` -> the top-level names of everything it imports."""
    return {module: {name.split(".")[0] for name in imported_names(path, module, path.name == "__init__.py")}
            for module, path in project_modules(root).items() if module.split(".")[0] == package}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected component of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def floor_violations(root: Path) -> list[str]:
    violations = []
    for package, banned in FORBIDDEN.items():
        for module, names in external_imports(root, package).items():
            violations += [f"{module} imports {name}" for name in sorted(names & set(banned))]
    return violations


def test_core_and_pages_keep_to_their_floors():
    assert floor_violations(PROJECT_DIR) == []


def test_no_import_cycles_between_project_modules():
    assert cycles(import_graph(PROJECT_DIR)) == []


def test_the_graph_sees_the_real_imports():
    graph = import_graph(PROJECT_DIR)
    assert "core.artifacts" in graph["core.classifier"]  # from core import artifacts
    assert "core.classifier" in graph["training.evaluate"]
    assert "training.data" in graph["training.radiograph_reference"]
    assert any(module.startswith("pages.") for module in graph)


# --- the checks themselves fail where they should ------------------------------------------------

def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").touch()
    return root


@pytest.mark.parametrize("files, expected", [
    ({"core/a.py": "def f():\n    import training.b\n", "training/b.py": ""}, "core.a imports training"),
    ({"core/a.py": "import streamlit as st\n"}, "core.a imports streamlit"),
    ({"core/a.py": "from pages import shared\n", "pages/shared.py": ""}, "core.a imports pages"),
    ({"pages/p.py": "from training.data import load_index\n", "training/data.py": ""}, "pages.p imports training"),
])
def test_a_floor_violation_is_reported(tmp_path, files, expected):
    assert expected in floor_violations(_write_tree(tmp_path, files))


def test_a_cycle_is_reported_even_through_a_lazy_or_relative_import(tmp_path):
    root = _write_tree(tmp_path, {
        "core/a.py": "from core import b\n",
        "core/b.py": "def later():\n    from .c import x\n",
        "core/c.py": "import core.a\nx = 1\n",
        "training/t.py": "from core import a\n",
    })
    assert cycles(import_graph(root)) == [["core.a", "core.b", "core.c"]]
