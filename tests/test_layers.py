"""The floors of the project, checked on the source with ``ast``.

``core`` is the bottom floor: it is what is served. ``training`` (builds and judges ``models/``),
``serving`` (Ray) and the app (``pages``, its helpers' package ``ui`` where there is one, and
``streamlit_app``) stand on core; ``bench`` and ``tests`` stand above them all. No import runs up a
floor (:data:`FLOORS`), and the packages that share a floor keep apart where :data:`FORBIDDEN` says
so: ``core`` imports neither training, the app, serving, bench, streamlit nor Ray; ``training``
imports neither bench, the app, serving, streamlit nor Ray; the app never imports training or
serving; serving never imports the app or training. No two project modules import each other,
directly or round a longer loop.

Every import counts, including those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core.config import PROJECT_DIR

# Top-level package (or module) -> its floor, bottom up. ``ui`` may be absent.
FLOORS = {"core": 0,
          "training": 1, "serving": 1, "pages": 1, "ui": 1, "streamlit_app": 1,
          "bench": 2, "tests": 2}
PACKAGES = tuple(name for name in FLOORS if name != "streamlit_app")
APP = ("pages", "ui", "streamlit_app")
ABOVE = ("bench", "tests")
FORBIDDEN = {"core": ("training", *APP, "serving", *ABOVE, "streamlit", "ray"),
             "training": (*APP, "serving", *ABOVE, "streamlit", "ray"),
             **{package: ("training", "serving", *ABOVE, "ray") for package in APP},
             "serving": (*APP, "training", *ABOVE, "streamlit")}
NOT_CODE = ("assets", "docs", "models", "runs", "exported")  # folders at the root that hold no modules


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path) -> dict[str, Path]:
    modules = {module_name(path, root): path for package in PACKAGES if (root / package).is_dir()
               for path in (root / package).rglob("*.py")}
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
    """Each import of a name that :data:`FORBIDDEN` bars from the importer's package."""
    violations = []
    for package, banned in FORBIDDEN.items():
        for module, names in external_imports(root, package).items():
            violations += [f"{module} imports {name}" for name in sorted(names & set(banned))]
    return violations


def floor(module: str) -> int:
    return FLOORS[module.split(".")[0]]


def imports_up_a_floor(root: Path) -> list[str]:
    """Each import edge between project modules that goes to a higher floor than its importer's."""
    return [f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
            for module, targets in sorted(import_graph(root).items()) for target in sorted(targets)
            if floor(target) > floor(module)]


def packages_without_a_floor(root: Path) -> list[str]:
    """Folders at the root with Python modules in them, and modules there, that :data:`FLOORS` leaves out."""
    found = [path.name for path in root.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))
             and path.name not in NOT_CODE and any(path.glob("*.py"))]
    found += [path.stem for path in root.glob("*.py")]
    return sorted(name for name in found if name not in FLOORS)


def test_no_package_imports_what_its_floor_forbids():
    assert floor_violations(PROJECT_DIR) == []


def test_no_import_runs_up_a_floor():
    assert imports_up_a_floor(PROJECT_DIR) == []


def test_every_package_at_the_root_has_a_floor():
    assert packages_without_a_floor(PROJECT_DIR) == []


def test_no_import_cycles_between_project_modules():
    assert cycles(import_graph(PROJECT_DIR)) == []


def test_the_graph_sees_the_real_imports():
    graph = import_graph(PROJECT_DIR)
    assert "core.artifacts" in graph["core.classifier"]  # from core import artifacts
    assert "core.classifier" in graph["training.evaluate"]
    assert "training.data" in graph["training.radiograph_reference"]
    assert "training.box_features" in graph["training.train_box"]
    assert any(module.startswith("pages.") for module in graph)
    assert any(module.startswith("tests.") for module in graph)


# --- the checks themselves fail where they should ------------------------------------------------

def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in PACKAGES:
        if package != "ui":  # optional: present only where a test writes it
            (root / package).mkdir(exist_ok=True)
            (root / package / "__init__.py").touch()
    return root


@pytest.mark.parametrize("files, expected", [
    ({"core/a.py": "def f():\n    import training.b\n", "training/b.py": ""}, "core.a imports training"),
    ({"core/a.py": "import streamlit as st\n"}, "core.a imports streamlit"),
    ({"core/a.py": "from pages import shared\n", "pages/shared.py": ""}, "core.a imports pages"),
    ({"pages/p.py": "from training.data import load_index\n", "training/data.py": ""}, "pages.p imports training"),
    ({"training/t.py": "from bench.timing import summary\n", "bench/timing.py": ""}, "training.t imports bench"),
    ({"training/t.py": "def f():\n    import serving.archive\n"}, "training.t imports serving"),
    ({"training/t.py": "import streamlit\n"}, "training.t imports streamlit"),
    ({"training/t.py": "from ray import data\n"}, "training.t imports ray"),
    ({"training/t.py": "from pages import state\n"}, "training.t imports pages"),
    ({"training/t.py": "from ui import widgets\n", "ui/widgets.py": ""}, "training.t imports ui"),
    ({"ui/w.py": "from training import data\n"}, "ui.w imports training"),
    ({"serving/s.py": "from ui.state import x\n", "ui/state.py": ""}, "serving.s imports ui"),
])
def test_a_floor_violation_is_reported(tmp_path, files, expected):
    assert expected in floor_violations(_write_tree(tmp_path, files))


@pytest.mark.parametrize("files, expected", [
    ({"core/a.py": "from training import b\n", "training/b.py": ""}, "core.a (floor 0) imports training.b (floor 1)"),
    ({"training/t.py": "def f():\n    from bench.timing import summary\n", "bench/timing.py": ""},
     "training.t (floor 1) imports bench.timing (floor 2)"),
    ({"core/a.py": "from tests.fixture import x\n", "tests/fixture.py": ""}, "core.a (floor 0) imports tests.fixture (floor 2)"),
])
def test_an_import_up_a_floor_is_reported(tmp_path, files, expected):
    assert expected in imports_up_a_floor(_write_tree(tmp_path, files))


def test_imports_down_or_across_a_floor_pass_with_or_without_ui(tmp_path):
    tree = {"training/t.py": "from core import a\n", "core/a.py": "", "bench/b.py": "from training import t\n",
            "tests/test_b.py": "from bench import b\nfrom pages import p\n", "pages/p.py": "from core import a\n"}
    without_ui = _write_tree(tmp_path / "without", tree)
    assert not (without_ui / "ui").exists()
    assert imports_up_a_floor(without_ui) == [] and floor_violations(without_ui) == []
    with_ui = _write_tree(tmp_path / "with", {**tree, "ui/__init__.py": "", "ui/state.py": "from core import a\n",
                                             "pages/p.py": "from ui import state\n"})
    assert "ui.state" in import_graph(with_ui)["pages.p"]
    assert imports_up_a_floor(with_ui) == [] and floor_violations(with_ui) == []


def test_a_package_without_a_floor_is_reported(tmp_path):
    root = _write_tree(tmp_path, {"scripts/tool.py": "", "docs/conf.py": "", "loose.py": ""})
    assert packages_without_a_floor(root) == ["loose", "scripts"]


def test_a_cycle_is_reported_even_through_a_lazy_or_relative_import(tmp_path):
    root = _write_tree(tmp_path, {
        "core/a.py": "from core import b\n",
        "core/b.py": "def later():\n    from .c import x\n",
        "core/c.py": "import core.a\nx = 1\n",
        "training/t.py": "from core import a\n",
    })
    assert cycles(import_graph(root)) == [["core.a", "core.b", "core.c"]]
