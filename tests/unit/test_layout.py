"""The project's shape: import names resolve here, and the import rules and size limits hold.

- ``pipeline`` never imports ``daemon`` (the library stays usable without the service);
- only ``daemon/cli/`` parses arguments (``argparse``);
- no import cycles between modules of ``pipeline`` and ``daemon``, counting imports inside functions and under
  ``TYPE_CHECKING`` (a cycle hidden in a function is still two modules that cannot be understood apart);
- no file in ``pipeline/`` or ``daemon/`` over 400 lines, no function over 60.

The graph counts an import of a module's name as an edge to that module; the packages above it, whose
``__init__`` Python runs on the way, are not counted (a package that re-exports its parts would otherwise be in
a cycle with each of them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pipeline

import daemon

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("pipeline", "daemon")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60

Graph = dict[str, set[str]]


def module_name(path: Path, root: Path = REPO) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(root: Path = REPO, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by its dotted name."""
    return {module_name(path, root): path for package in packages for path in sorted((root / package).rglob("*.py"))}


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name ``path`` imports anywhere (module level, functions, ``if`` blocks), relative imports
    resolved: ``import a.b`` gives ``a.b``, ``from a import b`` gives ``a.b`` (b a module or a name in a)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(modules: dict[str, Path]) -> Graph:
    """Module -> the modules of ``modules`` it imports: each imported name counts for the longest known module
    that is it or holds it (``from daemon.fsutil import write_atomic`` -> ``daemon.fsutil``,
    ``from daemon import log`` -> ``daemon.log``)."""
    graph: Graph = {}
    for module, path in modules.items():
        edges = set()
        for name in imported_names(path, module):
            parts = name.split(".")
            owner = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in modules), None)
            if owner is not None and owner != module:
                edges.add(owner)
        graph[module] = edges
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted, the list sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
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
    return sorted(found)


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``name (lines)`` for each function or method of ``path`` longer than ``limit`` (def to last line)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                out.append(f"{node.name}:{node.lineno} ({length} lines)")
    return out


# -- the rules, on this repository -----------------------------------------------------------------------------


def test_generic_import_names_resolve_inside_this_project():
    # python-daemon also installs a top-level 'daemon' package: make sure ours is the one imported
    assert Path(daemon.__file__).resolve().parent == REPO / "daemon"
    assert Path(pipeline.__file__).resolve().parent == REPO / "pipeline"


def test_pipeline_never_imports_daemon():
    offenders = sorted(f"{module} -> {name}" for module, path in sources().items() if module.startswith("pipeline")
                       for name in imported_names(path, module) if name.split(".")[0] == "daemon")
    assert offenders == []


def test_only_the_command_line_parses_arguments():
    offenders = []
    for module, path in sources().items():
        names = imported_names(path, module)
        if any(n.split(".")[0] == "argparse" for n in names) and not module.startswith("daemon.cli"):
            offenders.append(module)
    assert offenders == [], "argparse belongs in daemon/cli/"


def test_no_import_cycles_between_modules():
    found = cycles(import_graph(sources()))
    assert found == [], "import cycles (each a strongly connected component):\n" + "\n".join(
        " <-> ".join(component) for component in found)


def test_no_file_over_400_lines_and_no_function_over_60():
    offenders = []
    for path in sources().values():
        lines = len(path.read_text().splitlines())
        rel = path.relative_to(REPO).as_posix()
        if lines > MAX_FILE_LINES:
            offenders.append(f"{rel}: {lines} lines")
        offenders += [f"{rel}: {f}" for f in long_functions(path)]
    assert offenders == [], "\n".join(offenders)


# -- the checks themselves can fail ----------------------------------------------------------------------------


def test_the_cycle_finder_reports_each_strongly_connected_component():
    assert cycles({}) == []
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert cycles({"a": {"a"}}) == []  # one module alone is no cycle
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_the_import_graph_counts_function_level_relative_and_type_checking_imports(tmp_path):
    files = {
        "pkg/__init__.py": "from pkg.b import thing\n",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n",
        "pkg/b.py": "thing = 1\ndef later():\n    from . import a\n",
        "pkg/c.py": "import pkg.b\nimport os\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/d.py": "from .. import b\nfrom ..c import nothing\nimport argparse\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(sources(tmp_path, ("pkg",)))
    assert graph == {
        "pkg": {"pkg.b"},
        "pkg.a": {"pkg.c"},  # ``from pkg import c``: the submodule, not the package's __init__
        "pkg.b": {"pkg.a"},
        "pkg.c": {"pkg.b"},
        "pkg.sub": set(),
        "pkg.sub.d": {"pkg.b", "pkg.c"},
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_the_size_limits_catch_a_long_function(tmp_path):
    source = tmp_path / "long.py"
    source.write_text("def short():\n    pass\n\n\ndef long():\n" + "    x = 1\n" * 60)
    assert long_functions(source) == ["long:5 (61 lines)"]
