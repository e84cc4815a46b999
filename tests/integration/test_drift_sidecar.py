"""The sidecar of a real run (real models) carries the drift features, computed from the picture before masking."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features import FEATURES_VERSION, frame_stats
from pipeline.media.image import load_image
from pipeline.qc import QCReport
from pipeline.run import process_file

from tests.integration.drift_control import EVAL, _engine_and_params, require_eval


@pytest.mark.shared
def test_an_image_sidecar_has_versioned_features_of_the_unmasked_picture(tmp_path):
    require_eval()
    engine, params = _engine_and_params()
    src = EVAL / "rbnr_faces" / "images" / "set1" / "set1_01.JPG"
    report = process_file(src, tmp_path / "out.jpg", params, engine, name="set1_01.JPG")
    assert report.disposition in ("done", "review")
    features = QCReport.from_json(report.to_json()).features  # survives the sidecar round trip
    assert features["version"] == FEATURES_VERSION
    assert features["format"]["codec"] == "jpeg" and 80 <= features["format"]["jpeg_quality"] <= 100
    confident = [d for d in report.detections if d.object_class == "face" and d.band == "confident"]
    in_band = [d for d in report.detections if d.object_class == "face" and d.band == "review"]
    assert features["detector"]["face"]["detections"] == len(confident) >= 1
    assert features["detector"]["face"]["low_band"] == len(in_band)
    assert features["detector"]["face"]["top_score"] == pytest.approx(max(d.score for d in confident), abs=1e-4)
    original = frame_stats(load_image(src, params.output.max_pixels).rgb)
    masked = frame_stats(np.array(load_image(tmp_path / "out.jpg", params.output.max_pixels).rgb))
    assert features["input"]["sharpness"] == pytest.approx(original["sharpness"], rel=1e-6)
    assert masked["sharpness"] != pytest.approx(original["sharpness"], rel=1e-3)  # masks blur: the order matters


def test_a_video_sidecar_has_features_sampled_about_once_a_second(tmp_path, face_engine):
    from pipeline.params import Params

    from tests.integration.test_video_process import FACES_ONLY, flat_clip

    src, dst = tmp_path / "clip.mp4", tmp_path / "out" / "clip.mp4"
    dst.parent.mkdir()
    flat_clip(src, frames=30)
    report = process_file(src, dst, Params(detector=FACES_ONLY), face_engine, name="clip.mp4")
    assert report.disposition == "done", report.error
    features = QCReport.from_json(report.to_json()).features
    rate = features["frames_sampled"]
    assert features["version"] == FEATURES_VERSION and 1 <= rate <= 3  # 30 frames: about one per second
    assert features["format"]["codec"] == report.video["codec_in"] and features["format"]["jpeg_quality"] is None
    assert features["detector"]["face"]["empty"] == 1.0  # a flat picture: nothing found
    assert features["video"] == {"tracks": 0, "interpolated_share": 0.0, "empty_frame_share": 1.0}
