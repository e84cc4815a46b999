"""Configuration: TOML + VEIL_ environment, validation messages that name the key and the value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config.settings import ConfigError, load_settings, trial_folder

REPO = Path(__file__).resolve().parents[2]

GOOD = """
[service]
workers = 2
[profiles.cams.mask]
style = "mosaic"
[[folders]]
name = "cams"
ingest = "{root}/in"
output = "{root}/out"
profile = "cams"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "veil.toml"
    path.write_text(text.format(root=tmp_path))
    return path


def test_good_file_fills_defaults_and_siblings(tmp_path):
    settings = load_settings(write(tmp_path, GOOD))
    folder = settings.folders[0]
    assert settings.service.workers == 2
    assert folder.review == tmp_path / "review" and folder.failed == tmp_path / "failed"
    assert folder.originals == tmp_path / "originals"
    assert settings.params_for(folder).mask.style == "mosaic"
    assert "default" in settings.profiles  # always there, for folders that name none


def test_workers_are_never_recycled_unless_asked(tmp_path, monkeypatch):
    assert load_settings(write(tmp_path, GOOD)).service.worker_max_jobs == 0
    monkeypatch.setenv("VEIL_SERVICE__WORKER_MAX_RSS_MB", "4096")
    service = load_settings(write(tmp_path, GOOD)).service
    assert (service.worker_max_jobs, service.worker_max_rss_mb) == (0, 4096)


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_SERVICE__WORKERS", "3")
    monkeypatch.setenv("VEIL_WATCH__SETTLE_S", "0.5")
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.service.workers == 3
    assert settings.watch.settle_s == 0.5


@pytest.mark.parametrize(
    "extra, key, value",
    [
        ("[service]\nworkers = 0\n", "service.workers", "0"),
        ("[watch]\nsettle_s = -1\n", "watch.settle_s", "-1"),
        ("[watch]\nmode = 'fanotify'\n", "watch.mode", "'fanotify'"),
        ("[service]\ndevices = ['gpu0']\n", "service.devices", "gpu0"),
        ("[profiles.default.detector.per_class.face]\nthreshold = 1.5\nreview_floor = 0.1\n",
         "profiles.default.detector.per_class.face.threshold", "1.5"),
        ("[profiles.default.mask]\nstyle = 'pixelate'\n", "profiles.default.mask.style", "'pixelate'"),
        ("[service]\nworkerz = 2\n", "service.workerz", "2"),
        ("[service]\nworker_max_jobs = -1\n", "service.worker_max_jobs", "-1"),
        ("[service]\nworker_max_rss_mb = -5\n", "service.worker_max_rss_mb", "-5"),
    ],
)
def test_bad_value_is_named_with_its_key(tmp_path, extra, key, value):
    text = GOOD.replace("[service]\nworkers = 2\n", "") + "\n" + extra
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert key in str(info.value)
    assert value in str(info.value)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("[[folders]]\ningest = '{root}/in'\n", "folders[0].output"),
        ("[[folders]]\ningest = '{root}/in'\noutput = '{root}/in/out'\n", "must not be inside the ingest"),
        ("[[folders]]\ningest = '{root}/in'\noutput = '{root}/out'\nprofile = 'nope'\n", "profile 'nope'"),
        ("[[folders]]\nname='a'\ningest = '{root}/in'\noutput = '{root}/o1'\n"
         "[[folders]]\nname='b'\ningest = '{root}/in/sub'\noutput = '{root}/o2'\n", "overlap"),
        ("", "no watch folder"),
        ("[service\nworkers = 1\n", "invalid TOML"),
    ],
)
def test_inconsistent_files_are_refused(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=None) as info:
        load_settings(write(tmp_path, text))
    assert needle in str(info.value)


def test_trial_needs_no_file(tmp_path):
    settings = load_settings(None, folders=[trial_folder(tmp_path / "in", tmp_path / "out", None, tmp_path / "bad")])
    folder = settings.folders[0]
    assert folder.ingest == tmp_path / "in"
    assert folder.review == tmp_path / "review"
    assert folder.failed == tmp_path / "bad"
    assert folder.profile == "default"


def _veil(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True, text=True, cwd=REPO)


def test_config_check_accepts_the_shipped_default():
    result = _veil("config", "check", str(REPO / "config" / "veil.toml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok:")


def test_config_check_names_the_bad_key(tmp_path):
    path = write(tmp_path, GOOD.replace("workers = 2", "workers = 'many'"))
    result = _veil("config", "check", str(path))
    assert result.returncode == 1
    assert "service.workers" in result.stderr and "'many'" in result.stderr


def test_serve_refuses_an_invalid_configuration(tmp_path):
    path = write(tmp_path, GOOD.replace("workers = 2", "workers = -4"))
    result = _veil("serve", "--config", str(path))
    assert result.returncode == 78  # EX_CONFIG: systemd does not restart it
    assert "service.workers" in result.stderr and "-4" in result.stderr


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    path = etc / "veil.toml"
    path.write_text('[service]\nstate_dir = "state"\n[models]\ncontrol_set = "control"\n'
                    '[[folders]]\ningest = "srv/veil/ingest"\noutput = "../srv/out"\nreview = "~/review"\n')
    monkeypatch.chdir("/")  # as under systemd
    settings = load_settings(path)
    folder = settings.folders[0]
    assert folder.ingest == etc / "srv" / "veil" / "ingest"
    assert folder.output == tmp_path / "srv" / "out"
    assert folder.failed == tmp_path / "srv" / "failed"
    assert folder.review == Path("~/review").expanduser()
    assert settings.service.state_dir == etc / "state"
    assert settings.models.control_set == etc / "control"


def test_config_check_warns_about_folders_that_do_not_exist(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "failed").write_text("a file where a folder should be")
    result = _veil("config", "check", str(write(tmp_path, GOOD)))
    assert result.returncode == 0 and result.stdout.startswith("ok:")
    warnings = result.stderr.splitlines()
    assert f"warning: folder 'cams': review {tmp_path / 'review'} does not exist" in warnings
    assert f"warning: folder 'cams': failed {tmp_path / 'failed'} is not a folder" in warnings
    assert not any(" ingest " in line or " output " in line for line in warnings)


def test_a_bad_environment_variable_is_blamed_on_the_variable_not_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_SERVICE__WORKERS", "-3")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, GOOD))
    message = str(info.value)
    assert message.startswith("environment VEIL_SERVICE__WORKERS: service.workers")
    assert str(tmp_path / "veil.toml") not in message


def test_a_bad_value_in_the_file_is_still_blamed_on_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_WATCH__SETTLE_S", "1")
    path = write(tmp_path, GOOD.replace("workers = 2", "workers = 0"))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: service.workers")


def test_bad_json_in_an_environment_variable_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("VEIL_FOLDERS", "[not json")
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, GOOD))
    assert "folders" in str(info.value) and "environment" in str(info.value)


def test_an_unknown_veil_variable_is_warned_about_by_name_never_by_value(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VEIL_SERVCE__WORKERS", "secret-value-17")
    monkeypatch.setenv("VEIL_CONFIG", str(tmp_path / "veil.toml"))  # not a setting, but known
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.service.workers == 2
    err = capsys.readouterr().err
    assert "VEIL_SERVCE__WORKERS" in err and "warning" in err
    assert "secret-value-17" not in err and "VEIL_CONFIG" not in err
