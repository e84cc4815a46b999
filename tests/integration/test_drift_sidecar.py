"""The sidecar of a real run carries the drift features, computed from the picture before masking."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.features import FEATURES_VERSION, frame_stats
from pipeline.media.image import load_image
from pipeline.qc import QCReport
from pipeline.run import process_file
from tests.integration.drift_control import EVAL, _engine_and_params, require_eval

pytestmark = pytest.mark.shared


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
