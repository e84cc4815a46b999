"""Per-file features: each statistic moves the way its name says, on pictures built to show it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.detect.views import detector_views
from pipeline.features import FEATURES_VERSION, VideoFeatures, detector_stats, frame_stats, image_features, jpeg_quality
from pipeline.params import Params
from pipeline.records import Detections, ObjectClass


def _scene(seed: int = 0, size=(480, 640)) -> np.ndarray:
    """A textured colour scene: smooth gradients, squares of colour and fine detail."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), 128.0)], axis=2)
    for _ in range(30):
        x0, y0 = rng.integers(0, w - 40), rng.integers(0, h - 40)
        rgb[y0:y0 + 40, x0:x0 + 40] = rng.integers(0, 255, 3)
    rgb += rng.normal(0, 6, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_the_statistics_follow_darkening_blur_and_grayscale():
    scene = _scene()
    base = frame_stats(scene)
    dark = frame_stats((scene * 0.3).astype(np.uint8))
    blurred = frame_stats(cv2.GaussianBlur(scene, (0, 0), 3))
    gray = frame_stats(np.repeat(cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2))
    assert dark["brightness_mean"] < 0.4 * base["brightness_mean"] and dark["contrast"] < base["contrast"]
    assert blurred["sharpness"] < 0.2 * base["sharpness"] and blurred["noise"] < base["noise"]
    assert gray["gray"] == 1.0 and base["gray"] == 0.0
    assert gray["colourfulness"] < 1.0 < base["colourfulness"]
    assert base["brightness_p05"] <= base["brightness_p50"] <= base["brightness_p95"]


def test_the_detector_gates_are_recorded_as_the_detectors_views_apply_them():
    """``underexposed`` and ``out_of_focus`` say what the views gave each detector (the audit reads them so)."""
    scene = _scene()
    for picture in (scene, (scene * 0.3).astype(np.uint8), cv2.GaussianBlur(scene, (0, 0), 3),
                    cv2.GaussianBlur((scene * 0.3).astype(np.uint8), (0, 0), 3), cv2.blur(scene, (1, 9))):
        stats = frame_stats(picture)
        views = detector_views(picture, ObjectClass)
        levelled = views[ObjectClass.FACE] is not picture
        assert stats["underexposed"] == float(levelled)
        sharpened = not levelled and views[ObjectClass.LICENSE_PLATE] is not picture
        assert sharpened == (not levelled and stats["out_of_focus"] == 1.0)
    assert frame_stats(scene)["underexposed"] == frame_stats(scene)["out_of_focus"] == 0.0
    blurred = frame_stats(cv2.GaussianBlur(scene, (0, 0), 3))
    assert blurred["out_of_focus"] == 1.0 and blurred["blur_effect"] > frame_stats(scene)["blur_effect"] + 0.1
    assert frame_stats((scene * 0.3).astype(np.uint8))["underexposed"] == 1.0
    shaken = frame_stats(cv2.blur(scene, (1, 9)))  # a vertical streak: blurrier down the columns
    assert shaken["out_of_focus"] == 1.0 and shaken["blur_streak"] < -0.15 < frame_stats(scene)["blur_streak"]


def test_clipped_share_counts_blown_and_crushed_pixels():
    half = np.zeros((100, 100, 3), dtype=np.uint8)
    half[:, 50:] = 255
    assert frame_stats(half)["clipped_share"] == pytest.approx(1.0)
    assert frame_stats(np.full((100, 100, 3), 128, np.uint8))["clipped_share"] == 0.0


@pytest.mark.parametrize("quality", [20, 50, 75, 95])
def test_jpeg_quality_is_read_from_the_header_and_low_quality_is_blocky(tmp_path, quality):
    path = tmp_path / "q.jpg"
    Image.fromarray(_scene(1)).save(path, quality=quality)
    assert abs(jpeg_quality(path) - quality) <= 2
    if quality == 20:
        pristine = frame_stats(_scene(1))["blockiness"]
        assert frame_stats(np.array(Image.open(path)))["blockiness"] > pristine + 0.2


def test_a_jpeg_with_a_gain_map_has_its_quality_read_too(tmp_path):
    """Phones' JPEGs with secondary images (Pillow's MPO) beside plain ones from the same camera: one codec,
    one quality, no format change between them."""
    path = tmp_path / "phone.jpg"
    Image.fromarray(_scene(1)).save(path, format="MPO", save_all=True, quality=75,
                                    append_images=[Image.fromarray(_scene(2)).resize((32, 32))])
    assert Image.open(path).format == "MPO"
    assert abs(jpeg_quality(path) - 75) <= 2


def test_jpeg_quality_of_other_formats_is_none(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(_scene()).save(path)
    assert jpeg_quality(path) is None
    assert jpeg_quality(tmp_path / "missing.jpg") is None


def test_detector_stats_per_class():
    params = Params()  # face: threshold 0.4, review floor 0.2
    dets = Detections(np.array([[0, 0, 10, 10], [0, 0, 40, 40], [0, 0, 5, 5], [10, 10, 30, 20]]),
                      np.array([0.9, 0.5, 0.3, 0.8]), np.array([1, 1, 1, 2]))
    stats = detector_stats(dets, params, (100, 200, 3))
    assert stats["face"] == {"detections": 2, "low_band": 1, "top_score": pytest.approx(0.9),
                             "median_size": pytest.approx(25 / 100), "empty": 0.0}
    assert stats["license_plate"]["detections"] == 1
    empty = detector_stats(Detections.empty(), params, (100, 200, 3))
    assert empty["face"] == {"detections": 0, "low_band": 0, "top_score": 0.0, "median_size": 0.0, "empty": 1.0}


def test_image_features_are_versioned_and_hold_no_pixels_or_boxes(tmp_path):
    path = tmp_path / "a.jpg"
    Image.fromarray(_scene()).save(path, quality=80)
    rgb = np.array(Image.open(path))
    dets = Detections(np.array([[1, 2, 30, 40]]), np.array([0.9]), np.array([1]))
    features = image_features(path, rgb, dets, Params(), "JPEG")
    assert features["version"] == FEATURES_VERSION
    assert features["format"] == {"width": 640, "height": 480, "codec": "jpeg", "jpeg_quality": 80}
    flat = repr(features)
    assert "30" not in repr(features["detector"]) and len(flat) < 2000  # summary numbers only


def test_video_features_sample_about_one_frame_per_second():
    params = Params()
    video = VideoFeatures.for_video(params, 25, "h264", 64, 48)
    dark = np.full((48, 64, 3), 10, np.uint8)
    for index in range(100):
        dets = Detections.empty() if index % 2 else Detections(np.array([[1, 1, 9, 9]]), np.array([0.9]), np.array([1]))
        video.frame(index, dark, dets if index % 2 == 0 or index % 5 == 0 else None)
    summary = {"tracks": [{"first_frame": 0, "last_frame": 99, "filled": {"interpolated": 25}}]}
    result = video.result(summary)
    assert result["frames_sampled"] == 4  # frames 0, 25, 50, 75
    assert result["input"]["brightness_mean"] == pytest.approx(10, abs=1)
    assert result["input"]["underexposed"] == 1.0  # a share of the sampled frames: every one of them here
    assert result["video"] == {"tracks": 1, "interpolated_share": 0.25, "empty_frame_share": pytest.approx(10 / 60)}
    assert result["format"]["codec"] == "h264"
