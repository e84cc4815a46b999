"""The project's shape: import names resolve here, and pipeline never depends on daemon."""

from __future__ import annotations

import ast
from pathlib import Path

import daemon
import pipeline

REPO = Path(__file__).resolve().parents[2]


def test_generic_import_names_resolve_inside_this_project():
    # python-daemon also installs a top-level 'daemon' package: make sure ours is the one imported
    assert Path(daemon.__file__).resolve().parent == REPO / "daemon"
    assert Path(pipeline.__file__).resolve().parent == REPO / "pipeline"


def test_pipeline_never_imports_daemon():
    offenders = []
    for source in (REPO / "pipeline").rglob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{source.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "daemon"]
    assert offenders == []
