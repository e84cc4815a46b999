"""Shared fixtures: the repository, the evaluation data (optional), and one loaded engine per session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
EVAL = SHARED / "eval"


def eval_set(name: str) -> Path:
    """The folder of one evaluation set; the test is skipped when ../shared is absent."""
    folder = EVAL / name
    if not (folder / "annotations.json").is_file():
        pytest.skip(f"evaluation data not present: {folder}")
    return folder


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def engine():
    from pipeline.engine import Engine
    from pipeline.params import DetectorParams

    return Engine.load(DetectorParams())


@pytest.fixture(scope="session")
def face_engine():
    from pipeline.engine import Engine
    from pipeline.params import DetectorParams

    return Engine.load(DetectorParams(classes=("face",)))
