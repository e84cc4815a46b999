"""Development sets made harder the way cameras make photos harder: underexposed, at night with sensor noise,
overexposed, grainy, under a street lamp's orange light, out of focus, shaken, heavily compressed, at half the
resolution, far away in a wider shot. Each photo of a COCO set is degraded and written as a JPEG with its boxes
(scaled with the photo) by pipeline/eval/derived.py, ready for ``veil eval``. The drift control set
(daemon/drift/control.py) perturbs its photos with the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline.eval.derived import Derived, build_derived_set


def darken(rgb: np.ndarray) -> np.ndarray:
    """Underexposed: a third of the light."""
    return np.clip(rgb.astype(np.float32) * 0.3, 0, 255).astype(np.uint8)


def night(rgb: np.ndarray) -> np.ndarray:
    """A night shot: a seventh of the light and the sensor's noise (the same noise field for every photo, so a
    set is built the same way every time)."""
    noise = np.random.default_rng(0).normal(0.0, 3.0, rgb.shape)
    return np.clip(rgb.astype(np.float32) * 0.15 + noise, 0, 255).astype(np.uint8)


def overexposed(rgb: np.ndarray) -> np.ndarray:
    """Washed out: 2.2 times the light over a raised black, the bright half clipped to white."""
    return np.clip(rgb.astype(np.float32) * 2.2 + 30, 0, 255).astype(np.uint8)


def iso_noise(rgb: np.ndarray) -> np.ndarray:
    """A small sensor at high ISO in daylight: grain of 18 grey levels (one noise field for every photo)."""
    noise = np.random.default_rng(1).normal(0.0, 18.0, rgb.shape)
    return np.clip(rgb.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def sodium(rgb: np.ndarray) -> np.ndarray:
    """Under a sodium street lamp: one orange hue, the colours gone and the contrast lowered."""
    grey = rgb.astype(np.float32).mean(axis=2, keepdims=True)
    return np.clip(grey * np.array([1.0, 0.7, 0.25]) * 0.8 + 20, 0, 255).astype(np.uint8)


def blur(rgb: np.ndarray) -> np.ndarray:
    """Out of focus: a Gaussian a three-hundredth of the long side wide."""
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=max(rgb.shape[:2]) / 300)


def motion(rgb: np.ndarray) -> np.ndarray:
    """Camera shake or a passing car: a horizontal streak a hundredth of the long side long (a box along the rows;
    its spread is about that of ``blur``'s Gaussian, along one axis only)."""
    length = max(3, round(max(rgb.shape[:2]) / 100))
    return cv2.blur(rgb, (length, 1))


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """An infrared or monochrome camera."""
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def downscale(rgb: np.ndarray) -> np.ndarray:
    """Half the resolution."""
    height, width = rgb.shape[:2]
    return cv2.resize(rgb, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


WIDE_SHOT = (1280, 720)  # ``distant``'s frame: a 720p still, the size of many cameras' pictures


def distant(rgb: np.ndarray) -> np.ndarray:
    """Far away in a wider shot: the photo at a third of its size (faces of 7 to 50 px in rbnr_faces), at the top
    left of a grey frame of at least ``WIDE_SHOT``, so the picture is large and its faces small."""
    height, width = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, width // 3), max(1, height // 3)), interpolation=cv2.INTER_AREA)
    frame = np.full((max(WIDE_SHOT[1], small.shape[0]), max(WIDE_SHOT[0], small.shape[1]), 3), 120, np.uint8)
    frame[: small.shape[0], : small.shape[1]] = small
    return frame


@dataclass(frozen=True)
class Degradation:
    pixels: Callable[[np.ndarray], np.ndarray]
    jpeg_quality: int = 90  # of the file written
    box_scale: float = 1.0  # the boxes follow the photo's size


DEGRADATIONS: dict[str, Degradation] = {
    "none": Degradation(lambda rgb: rgb),
    "darken": Degradation(darken),
    "night": Degradation(night),
    "overexposed": Degradation(overexposed),
    "iso_noise": Degradation(iso_noise),
    "sodium": Degradation(sodium),
    "blur": Degradation(blur),
    "motion": Degradation(motion),
    "jpeg_q20": Degradation(lambda rgb: rgb, jpeg_quality=20),
    "grayscale_ir": Degradation(grayscale),
    "downscale": Degradation(downscale, box_scale=0.5),
    "distant": Degradation(distant, box_scale=1 / 3),
}


def build_degraded_set(set_dir: Path, out_dir: Path, name: str, every: int = 1) -> Path:
    """Every ``every``-th photo of the COCO set in ``set_dir`` (by id), degraded by ``DEGRADATIONS[name]``, into
    ``out_dir`` (``images/`` and ``annotations.json``); return the annotations' path."""
    degradation = DEGRADATIONS[name]
    scale = degradation.box_scale

    def degrade(position: int, rgb: np.ndarray, annotations: list[dict]) -> Derived:
        return Derived(degradation.pixels(rgb), [{**a, "bbox": [v * scale for v in a["bbox"]],
                                                  "area": a.get("area", 0) * scale * scale} for a in annotations])

    return build_derived_set(set_dir, out_dir, every, degrade, degradation.jpeg_quality)
