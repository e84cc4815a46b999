"""No personal data where it does not belong: logs hold no detections, sidecars no pixels, and onnxruntime
sends no telemetry (no device id, no event store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.integration.serve_harness import (
    REPO,
    REVIEW_PROFILE,
    assert_each_once,
    sidecars,
    wait_for,
    write_image,
    write_video,
)


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        yield path, value
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def test_logs_hold_no_detections_and_sidecars_no_pixels(tmp_path, daemons):
    daemon = daemons(tmp_path, profile=REVIEW_PROFILE)  # a wide review band: noise gives many detections
    daemon.start(env={"VEIL_SERVICE__LOG_LEVEL": "debug"}).wait_ready()  # the chattiest logs, file names on
    write_image(daemon.ingest / "noise.jpg", 1, size=(160, 120))
    write_video(daemon.ingest / "clip.mp4", seconds=1.0)
    wait_for(lambda: daemon.finished() == 2, 120, "both files")
    assert daemon.stop() == 0
    reports = assert_each_once(daemon, ["noise.jpg", "clip.mp4"])
    detections = [d for r in reports.values() for d in r.detections]
    assert len(detections) >= 3, "the test needs detections to look for"

    log_text = daemon.log_path.read_text()
    events = daemon.events()
    assert len(events) >= 6
    for event in events:
        for path, value in _leaves(event):
            assert not any(word in path.lower() for word in ("box", "score", "detection", "pixel")), (path, event)
            if isinstance(value, list):
                assert not any(isinstance(v, float) for v in value), (path, event)
            if isinstance(value, str):
                assert len(value) < 2000, (path, len(value))
    for det in detections:
        x1, y1, x2, y2 = det.box
        assert f"{x1}, {y1}, {x2}" not in log_text and f"{x1},{y1},{x2}" not in log_text

    for folder in ("out", "review"):
        for sidecar in sidecars(tmp_path / folder):
            raw = (tmp_path / folder / sidecar).read_bytes()
            assert len(raw) < 200_000, (sidecar, len(raw))  # a 160x120 frame alone is 57,600 bytes of RGB
            for path, value in _leaves(json.loads(raw)):
                if isinstance(value, str):
                    assert len(value) < 1000, (sidecar, path)  # no encoded image or array
                if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
                    assert len(value) <= 4, (sidecar, path, len(value))  # boxes, never pixel rows


def test_onnxruntime_telemetry_is_off_no_device_id_no_event_store(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write_image(tmp_path / "in" / "a.jpg", 1)
    env = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "process", str(tmp_path / "in"), "-o",
                             str(tmp_path / "out"), "--classes", "face"],
                            cwd=REPO, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.jpg").is_file()
    # With telemetry on, onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}.
    assert [p.relative_to(home).as_posix() for p in home.rglob("*")] == []
    assert "telemetry" not in result.stderr.lower()
