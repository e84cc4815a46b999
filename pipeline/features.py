"""Per-file statistics for drift monitoring: what the input looked like and what the detectors made of it.

Computed from pixels the pipeline already holds, on a copy scaled to about 640 px (a few milliseconds per
frame). Only summary numbers leave this module: no pixels, no boxes, no embeddings. The result goes into
the sidecar as ``features`` with its own ``version``; bump ``FEATURES_VERSION`` when a definition changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.detect import exposure, focus
from pipeline.media.shrink import shrunk
from pipeline.params import Params
from pipeline.records import Detections, ObjectClass

FEATURES_VERSION = "veil.features/1"
_SIDE = 640  # statistics on a copy whose longer side is about this
_BLOCK_CROP = 512  # blockiness on a full-resolution central crop: scaling would blur the 8x8 grid away
_GRAY_CHROMA = 4.0  # mean |R-G| + |(R+G)/2-B| below this: a grayscale or IR picture

# IJG standard luminance quantisation table (ITU-T T.81 Annex K), in natural order.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)


def _percentiles(gray: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    cumulative = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    return [float(np.searchsorted(cumulative, q * cumulative[-1])) for q in qs]


def _noise_sigma(gray: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (1996): a Laplacian-difference kernel blind to edges and ramps."""
    if min(gray.shape) < 3:
        return 0.0
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
    response = cv2.filter2D(gray.astype(np.float32), -1, kernel)[1:-1, 1:-1]
    h, w = response.shape
    return float(np.sqrt(np.pi / 2) * np.abs(response).sum() / (6.0 * w * h))


def _blockiness(gray_full: np.ndarray) -> float:
    """Mean step across 8-px column/row boundaries over the mean step elsewhere (1.0: no JPEG blocks)."""
    h, w = gray_full.shape
    top, left = max(0, (h - _BLOCK_CROP) // 2) // 8 * 8, max(0, (w - _BLOCK_CROP) // 2) // 8 * 8
    crop = gray_full[top: top + _BLOCK_CROP, left: left + _BLOCK_CROP].astype(np.int16)
    if min(crop.shape) < 17:
        return 1.0
    steps = []
    for diffs in (np.abs(np.diff(crop, axis=1)), np.abs(np.diff(crop, axis=0)).T):
        at_edge = diffs[:, 7::8].mean()
        inside = np.delete(diffs, np.s_[7::8], axis=1).mean()
        steps.append((at_edge + 0.5) / (inside + 0.5))
    return float(np.mean(steps))


def frame_stats(rgb: np.ndarray) -> dict[str, float]:
    """Input statistics of one HxWx3 uint8 RGB picture."""
    small = shrunk(rgb, _SIDE)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    colour = small[::2, ::2]  # colour statistics are smooth: a quarter of the pixels is plenty
    r, g, b = (colour[..., i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    p05, p50, p95 = _percentiles(gray, (0.05, 0.5, 0.95))
    full_gray = gray if small is rgb else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    blur = focus.measure_grey(full_gray)  # the focus gate's own measure, from the luminance already made
    return {
        "brightness_mean": float(gray.mean()),
        "brightness_p05": p05,
        "brightness_p50": p50,
        "brightness_p95": p95,
        "contrast": float(gray.std()),
        "clipped_share": float(((gray <= 2) | (gray >= 253)).mean()),
        # Hasler and Suesstrunk (2003): spread plus offset of the opponent colour channels.
        "colourfulness": float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())),
        "gray": float(np.abs(rg).mean() + np.abs(yb).mean() < _GRAY_CHROMA),
        "sharpness": float(cv2.Laplacian(gray, cv2.CV_32F).var()),
        "noise": _noise_sigma(gray),
        "blockiness": _blockiness(full_gray),
        # The gates that choose what the detectors see (pipeline/detect/views.py), on the picture as they take it:
        # with the profile's detector settings, they say whether it was levelled or sharpened for a detector.
        "underexposed": float(exposure.levels(rgb) is not None),
        "blur_effect": blur.effect,
        "blur_streak": blur.streak,
        "out_of_focus": float(blur.out_of_focus),
    }


def jpeg_quality(path: Path) -> int | None:
    """The IJG quality (1-100) whose luminance table best matches the file's; None if not a JPEG."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            tables = getattr(image, "quantization", None) if image.format in ("JPEG", "MPO") else None  # MPO: with a gain map
    except OSError:
        return None
    if not tables or 0 not in tables:
        return None
    table = np.sort(np.array(tables[0], dtype=np.float64))  # sorted: the scan order does not matter
    if len(table) != 64:
        return None
    best, best_error = 0, np.inf
    for quality in range(1, 101):
        scale = 5000 / quality if quality < 50 else 200 - 2 * quality
        expected = np.clip(np.floor((_STD_LUMA * scale + 50) / 100), 1, 255)
        error = np.abs(np.sort(expected) - table).sum()
        if error < best_error:
            best, best_error = quality, error
    return best


def detector_stats(detections: Detections, params: Params, shape: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Per class: detections at or above threshold, the review-band count, top score, median box size."""
    short_side = float(min(shape[:2])) or 1.0
    out: dict[str, dict[str, float]] = {}
    for object_class in ObjectClass:
        label = object_class.label
        bounds = params.detector.thresholds(object_class)
        of_class = detections.classes == int(object_class)
        scores = detections.scores[of_class]
        boxes = detections.boxes[of_class]
        confident = scores >= bounds.threshold
        sizes = np.sqrt(np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None))
        out[label] = {
            "detections": int(confident.sum()),
            "low_band": int(((scores >= bounds.review_floor) & ~confident).sum()),
            "top_score": float(scores.max()) if scores.size else 0.0,
            # relative to the picture's short side, so a change of resolution alone does not move it
            "median_size": float(np.median(sizes[confident]) / short_side) if confident.any() else 0.0,
            "empty": float(not confident.any()),
        }
    return out


def image_features(src: Path, rgb: np.ndarray, detections: Detections, params: Params, fmt: str) -> dict[str, Any]:
    """The ``features`` field of an image's sidecar."""
    height, width = rgb.shape[:2]
    return {
        "version": FEATURES_VERSION,
        "frames_sampled": 1,
        "format": {"width": width, "height": height, "codec": fmt.lower(), "jpeg_quality": jpeg_quality(src)},
        "input": frame_stats(rgb),
        "detector": detector_stats(detections, params, rgb.shape),
    }


@dataclass
class VideoFeatures:
    """Accumulates the statistics of a video, one sampled frame per second (every frame's detections count)."""

    params: Params
    every: int  # frame stride of about one second
    codec: str
    width: int
    height: int
    _frames: list[dict[str, float]] = field(default_factory=list)
    _detector: list[dict[str, dict[str, float]]] = field(default_factory=list)
    _empty_frames: int = 0
    _detected_frames: int = 0

    @classmethod
    def for_video(cls, params: Params, fps: float | Fraction | None, codec: str, width: int, height: int) -> "VideoFeatures":
        return cls(params, max(1, round(fps or 1.0)), codec, width, height)

    def frame(self, index: int, rgb: np.ndarray, detections: Detections | None) -> None:
        if index % self.every == 0:
            self._frames.append(frame_stats(rgb))
        if detections is not None:
            self._detected_frames += 1
            stats = detector_stats(detections, self.params, rgb.shape)
            self._empty_frames += all(s["empty"] for s in stats.values())
            if index % self.every == 0:
                self._detector.append(stats)

    def result(self, video_summary: dict[str, Any] | None) -> dict[str, Any]:
        input_stats = {k: float(np.mean([f[k] for f in self._frames])) for k in self._frames[0]} if self._frames else {}
        if input_stats:
            input_stats["gray"] = float(input_stats["gray"] >= 0.5)  # the mode of the file, not a share
        detector: dict[str, dict[str, float]] = {}
        for label in (c.label for c in ObjectClass):
            rows = [d[label] for d in self._detector]
            if not rows:
                continue
            merged = {k: float(np.mean([r[k] for r in rows])) for k in ("detections", "low_band", "median_size")}
            merged["top_score"] = max(r["top_score"] for r in rows)
            merged["empty"] = float(all(r["empty"] for r in rows))
            detector[label] = merged
        tracks = (video_summary or {}).get("tracks", [])
        track_frames = sum(t["last_frame"] - t["first_frame"] + 1 for t in tracks)
        interpolated = sum(t.get("filled", {}).get("interpolated", 0) for t in tracks)
        return {
            "version": FEATURES_VERSION,
            "frames_sampled": len(self._frames),
            "format": {"width": self.width, "height": self.height, "codec": self.codec, "jpeg_quality": None},
            "input": input_stats,
            "detector": detector,
            "video": {
                "tracks": len(tracks),
                "interpolated_share": interpolated / track_frames if track_frames else 0.0,
                "empty_frame_share": self._empty_frames / self._detected_frames if self._detected_frames else 0.0,
            },
        }
