"""The systemd unit and the service install script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "veil.service"
VENV = Path(sys.prefix)


def unit_for(venv: Path, dest: Path) -> Path:
    """The unit as install_system.sh writes it for ``venv`` (verify checks that ExecStart exists)."""
    path = dest / "veil.service"
    path.write_text(UNIT.read_text().replace("/opt/veil/", f"{venv}/"))
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package 'systemd', listed in install.sh)")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    result = subprocess.run(["systemd-analyze", "verify", str(unit_for(VENV, tmp_path))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys are only warnings: none allowed


def test_unit_has_the_required_settings():
    text = UNIT.read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    expected = {
        "Type": "notify", "NotifyAccess": "main", "KillMode": "mixed", "User": "veil", "ProtectSystem": "strict",
        "NoNewPrivileges": "yes", "PrivateTmp": "yes", "ProtectHome": "yes", "IPAddressDeny": "any",
        "RestrictAddressFamilies": "AF_UNIX",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], key
    for key in ("WatchdogSec", "TimeoutStopSec", "MemoryMax", "ReadWritePaths", "ExecReload"):
        assert key in settings, key


def test_install_system_stages_config_unit_and_folders(tmp_path):
    dest = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(dest)}
    script = REPO / "tools" / "install_system.sh"
    result = subprocess.run([str(script), str(VENV), str(REPO)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (dest / "etc/veil/veil.toml").read_text() == (REPO / "config/veil.toml").read_text()
    unit = (dest / "etc/systemd/system/veil.service").read_text()
    assert f"ExecStart={VENV}/bin/veil serve --config /etc/veil/veil.toml" in unit
    drop_in = (dest / "etc/systemd/system/veil.service.d/10-folders.conf").read_text()
    for folder in ("ingest", "output", "review", "failed", "originals"):
        assert f"ReadWritePaths=/srv/veil/{folder}" in drop_in
        assert (dest / "srv/veil" / folder).is_dir()
    # A second run keeps the administrator's configuration.
    (dest / "etc/veil/veil.toml").write_text((REPO / "config/veil.toml").read_text().replace("workers = 2", "workers = 1"))
    result = subprocess.run([str(script), str(VENV), str(REPO)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "workers = 1" in (dest / "etc/veil/veil.toml").read_text()
    assert (dest / "etc/veil/veil.toml.dist").exists()


WORKER_UNIT = REPO / "systemd" / "veil-worker@.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package 'systemd', listed in install.sh)")
def test_worker_unit_passes_systemd_analyze_verify(tmp_path):
    path = tmp_path / "veil-worker@0.service"
    path.write_text(WORKER_UNIT.read_text().replace("/opt/veil/", f"{VENV}/"))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_install_system_with_a_broker_stages_the_worker_unit_and_a_root_only_broker_file(tmp_path):
    dest = tmp_path / "root"
    url = "amqp://veil:secret@broker:5672/veil"
    env = {**os.environ, "DESTDIR": str(dest), "VEIL_BROKER_URL": url}
    result = subprocess.run([str(REPO / "tools" / "install_system.sh"), str(VENV), str(REPO)], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broker = dest / "etc/veil/broker.url"
    assert broker.read_text().strip() == url and (broker.stat().st_mode & 0o777) == 0o600
    units = dest / "etc/systemd/system"
    worker = (units / "veil-worker@.service").read_text()
    assert f"ExecStart={VENV}/bin/veil worker --config /etc/veil/veil.toml --unit %i" in worker
    assert "LoadCredential=broker.url:/etc/veil/broker.url" in worker and url not in worker
    assert "ReadWritePaths=/srv/veil/ingest" in (units / "veil-worker@.service.d/10-folders.conf").read_text()
    assert "PrivateNetwork=no" in (units / "veil.service.d/20-broker.conf").read_text()
