"""Which sidecar numbers are monitored, how they are binned, and which way is risky.

Bins are fixed (not fitted to the data), so hourly histograms from different hosts and months add up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from pipeline.features import FEATURES_VERSION

Group = Literal["input", "detector"]
_CLASSES = (("face", "face"), ("plate", "license_plate"))


@dataclass(frozen=True)
class Feature:
    name: str
    group: Group
    edges: tuple[float, ...]  # inner bin edges; values below the first or above the last fall in the end bins
    kind: Literal["continuous", "proportion"] = "continuous"
    risky: int = 0  # detector features: -1 a fall is risky, +1 a rise is risky, 0 neither

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        return np.digitize(values, self.edges)


def _steps(start: float, stop: float, step: float) -> tuple[float, ...]:
    return tuple(float(x) for x in np.round(np.arange(start + step, stop, step), 6))


FEATURES: tuple[Feature, ...] = (
    Feature("brightness_mean", "input", _steps(0, 256, 16)),
    Feature("brightness_p05", "input", _steps(0, 256, 16)),
    Feature("brightness_p95", "input", _steps(0, 256, 16)),
    Feature("contrast", "input", _steps(0, 128, 8)),
    Feature("clipped_share", "input", (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)),
    Feature("colourfulness", "input", _steps(0, 128, 8)),
    Feature("log_sharpness", "input", _steps(0, 5, 0.25)),
    Feature("noise", "input", _steps(0, 20, 1)),
    Feature("blockiness", "input", _steps(0.8, 2.5, 0.05)),
    Feature("gray", "input", (0.5,), "proportion"),
    Feature("night_ir", "input", (0.5,), "proportion"),  # grayscale/IR or dark (mean brightness < DARK_BELOW)
    *(f for short, _ in _CLASSES for f in (
        Feature(f"{short}_detections", "detector", tuple(x + 0.5 for x in range(20)), risky=-1),
        Feature(f"{short}_low_band", "detector", tuple(x + 0.5 for x in range(10)), risky=+1),
        Feature(f"{short}_top_score", "detector", _steps(0, 1, 0.05), risky=-1),
        Feature(f"{short}_median_size", "detector", _steps(0, 0.5, 0.025), risky=-1),
        Feature(f"{short}_empty", "detector", (0.5,), "proportion", risky=+1),
    )),
)
BY_NAME = {f.name: f for f in FEATURES}
DARK_BELOW = 50.0
FORMAT_KEYS = ("resolution", "codec", "jpeg_quality", "mode")


def flatten(features: dict[str, Any] | None) -> tuple[dict[str, float], dict[str, str]] | None:
    """(monitored numbers, format values) from a sidecar's ``features``; None if absent or another version.

    A missing number is NaN: it counts in no histogram and no test (e.g. the median size of an empty file).
    """
    if not features or features.get("version") != FEATURES_VERSION or not features.get("input"):
        return None
    stats, detector = features["input"], features.get("detector", {})
    values: dict[str, float] = {name: float(stats.get(name, math.nan)) for name in
                                ("brightness_mean", "brightness_p05", "brightness_p95", "contrast", "clipped_share",
                                 "colourfulness", "noise", "blockiness", "gray")}
    values["log_sharpness"] = math.log10(1.0 + float(stats.get("sharpness", math.nan)))
    values["night_ir"] = float(values["gray"] > 0 or values["brightness_mean"] < DARK_BELOW)
    for short, label in _CLASSES:
        d = detector.get(label)
        for key in ("detections", "low_band", "top_score", "median_size", "empty"):
            values[f"{short}_{key}"] = float(d[key]) if d is not None else math.nan
        if d is not None and d["empty"]:
            values[f"{short}_median_size"] = math.nan
    fmt = features.get("format", {})
    formats = {
        "resolution": f"{fmt.get('width')}x{fmt.get('height')}",
        "codec": str(fmt.get("codec")),
        # quality moves by a point or two between encoders of one camera: only a real change counts
        "jpeg_quality": "none" if fmt.get("jpeg_quality") is None else str(int(fmt["jpeg_quality"]) // 10 * 10),
        "mode": "gray" if stats.get("gray") else "colour",
    }
    return values, formats
