"""Underexposed pictures, levelled before the detectors see them.

A night shot or an underexposed frame holds its faces and plates in a few dozen grey levels, where the
detectors find less: at a seventh of the light with sensor noise, ucsd_lp's plates were masked at 94% and a
night clip's plate on 80% of its frames; levelled to the full range, 98% and 100% (float32, 3 December;
docs/evaluation.md#night-shots). The stretch amplifies the sensor's noise as much as the picture, so the
plate detector's levelled picture is smoothed too. Only what the detectors are fed is levelled: the masks are
applied to the picture as it came.
"""

from __future__ import annotations

import cv2
import numpy as np

# A picture is underexposed when even its brighter pixels are dim: its 98th luminance percentile (the bright
# end, above a street lamp or headlights filling up to 2% of it) is under this. No photo of the development
# sets comes near it (their lowest is 128).
BRIGHT_END_PERCENTILE = 98.0
DIM_BRIGHT_END = 100
MOST_GAIN = 10.0  # beyond this, the stretch brings up noise rather than faces
# The stretch multiplies the sensor's noise by its gain (six- to tenfold at night), and that noise buries a plate's
# characters. For the plate detector a levelled picture is smoothed by a Gaussian of this many pixels: at night,
# openalpr_endtoend's plates were masked at 95.5% levelled alone and at 97.8% smoothed too, ucsd_lp's at 98% and
# 100%. Faces lose by it (cmu_mit_faces at night: a face 89.6% covered, under the 90% that counts), so the face
# detector sees the levelled picture unsmoothed (float32, 3 December; docs/evaluation.md#night-shots).
NOISE_SIGMA = 1.5
_SAMPLE_STEP = 4  # every 4th row and column: a 1080p frame's histogram in under a millisecond


def levels(rgb: np.ndarray) -> tuple[float, float] | None:
    """(black point, gain) that stretch an underexposed picture's luminance from its 0.5th percentile to its
    bright end over the full range (brighter pixels saturate); None for a picture that is not underexposed."""
    height, width = rgb.shape[:2]
    size = (max(1, width // _SAMPLE_STEP), max(1, height // _SAMPLE_STEP))
    sample = cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_NEAREST), cv2.COLOR_RGB2GRAY)
    counted = np.cumsum(cv2.calcHist([sample], [0], None, [256], [0, 256]).ravel())  # pixels at or below each level
    black, bright = (int(np.searchsorted(counted, counted[-1] * q / 100)) for q in (0.5, BRIGHT_END_PERCENTILE))
    if bright >= DIM_BRIGHT_END:
        return None
    return float(black), min(MOST_GAIN, 255.0 / max(bright - black, 1))


def levelled(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` with its levels stretched if it is underexposed (``levels``), else ``rgb`` itself."""
    stretch = levels(rgb)
    return rgb if stretch is None else stretched(rgb, *stretch)


def stretched(rgb: np.ndarray, black: float, gain: float) -> np.ndarray:
    """``rgb``'s levels from ``black`` up multiplied by ``gain`` (one table for every channel, so hues keep)."""
    table = np.clip((np.arange(256, dtype=np.float32) - black) * gain, 0, 255).astype(np.uint8)
    return cv2.LUT(rgb, table)


def denoised(rgb: np.ndarray) -> np.ndarray:
    """A levelled picture smoothed over ``NOISE_SIGMA`` pixels, against the noise the stretch amplified."""
    return cv2.GaussianBlur(rgb, (0, 0), NOISE_SIGMA)
