"""Out-of-focus and shaken pictures, sharpened before the plate detector sees them.

Out of focus (a Gaussian a three-hundredth of the long side wide), openalpr_endtoend's plates were masked at
85.4% and ucsd_lp's at 96%; sharpened for the plate detector, 93.3% and 100% (the plate detector alone, int8,
4 December; docs/evaluation.md#out-of-focus-plates-sharpened). Faces gained nothing from it. A picture counts
as out of focus by its blur effect (Crete et al., "The blur effect: perception and estimation with a new
no-reference perceptual blur metric", SPIE 2007): how little of its edges' contrast a further blur takes away.

Shaken (a streak along the rows), openalpr_endtoend's plates were masked at 91.0%, sharpened every way 92.1%,
and along the streak 96.6% (docs/evaluation.md#shaken-photos-sharpened-along-the-streak): a picture counts as
shaken when it is much blurrier along one axis than along the other, and is sharpened along that axis alone.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from pipeline.media.shrink import shrunk

# The blur effect runs from 0 (sharp) to 1. The 637 development photos as they are (re-encoded at JPEG quality 90)
# measure at most 0.44, 98% of them under 0.39. Out of focus as above, 98.8% of the plate sets' 424 photos
# measure 0.45 or more, and all 0.42 or more (4 December). Sharpening a photo that was sharp anyway masks the same
# plates but finds more that are not: openalpr_endtoend's precision at the threshold fell from 0.75 to 0.67.
BLURRED = 0.45
MEASURED_SIDE = 640  # the measure is taken at this long side, so it means the same at any resolution
_LOW_PASS = 11  # pixels of the further blur, as Crete et al.'s

# A picture blurred along one axis much more than along the other is streaked, by shake or motion. The 637
# development photos differ by at most 0.12 between the axes (98% by under 0.09), and none darkened, at night,
# grayscale, halved or compressed by 0.15. Shaken (a horizontal streak a hundredth of the long side long), the
# gate takes 56-100% of each set's photos; out of focus, a few differ by up to 0.32 (docs/evaluation.md).
STREAKED = 0.15

# Unsharp masking: the picture plus UNSHARP_AMOUNT times its difference from a Gaussian of the long side over
# UNSHARP_SPAN pixels. Of those tried on openalpr_endtoend out of focus, this one masked most (93.3%, against
# 92.1% for amount 1.5 over 1/320, 2 over 1/300, 3 over 1/600; 4 over 1/427 masked as many at lower precision).
UNSHARP_AMOUNT = 3.0
UNSHARP_SPAN = 427


class Blur(NamedTuple):
    """How blurred a picture looks along its rows (``rows``, which a horizontal streak blurs) and down its columns
    (``columns``), each from 0 (sharp) to 1: the share of its luminance's contrast between neighbours along that
    axis that a further 11-pixel box blur along it does not take away, measured at ``MEASURED_SIDE``."""

    rows: float
    columns: float

    @classmethod
    def recorded(cls, effect: float, streak: float) -> Blur:
        """The measure from the two numbers a sidecar records of it (``effect`` and ``streak``)."""
        return cls(effect, effect - streak) if streak >= 0 else cls(effect + streak, effect)

    @property
    def effect(self) -> float:
        """The blurrier axis: Crete et al.'s blur effect. 0 for a flat picture."""
        return max(self.rows, self.columns)

    @property
    def streak(self) -> float:
        """How much blurrier along the rows than down the columns (negative: a vertical streak)."""
        return self.rows - self.columns

    @property
    def streaked(self) -> bool:
        """Blurred along one axis by shake or motion, much more than along the other."""
        return abs(self.streak) >= STREAKED

    @property
    def out_of_focus(self) -> bool:
        """Blurred everywhere, or streaked."""
        return self.effect >= BLURRED or self.streaked


def measure(rgb: np.ndarray) -> Blur:
    return measure_grey(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def measure_grey(grey: np.ndarray) -> Blur:
    """``measure`` of a picture already converted to luminance (``cv2.COLOR_RGB2GRAY``)."""
    picture = shrunk(grey, MEASURED_SIDE).astype(np.float32)
    effects = []
    for axis, kernel in ((1, (_LOW_PASS, 1)), (0, (1, _LOW_PASS))):  # cv2 sizes are (width, height)
        contrast = np.abs(np.diff(picture, axis=axis))
        kept = np.abs(np.diff(cv2.blur(picture, kernel), axis=axis))
        edges = float(contrast.sum())
        # An axis without contrast (stripes along it) has no edges to judge by; it counts as sharp.
        effects.append(1.0 - float(np.maximum(contrast - kept, 0).sum()) / edges if edges > 0 else 0.0)
    return Blur(*effects)


def sharpened(rgb: np.ndarray, blur: Blur) -> np.ndarray:
    """``rgb`` unsharp-masked (``UNSHARP_AMOUNT`` over a Gaussian of the long side / ``UNSHARP_SPAN``), along the
    streak alone if ``blur`` is streaked: sharpening across it would only bring up noise and edges."""
    sigma = max(rgb.shape[:2]) / UNSHARP_SPAN
    if not blur.streaked:
        soft = cv2.GaussianBlur(rgb, (0, 0), sigma)
    elif blur.streak > 0:  # a kernel one pixel tall: along the rows alone
        soft = cv2.GaussianBlur(rgb, (0, 1), sigmaX=sigma)
    else:
        soft = cv2.GaussianBlur(rgb, (1, 0), sigmaX=0, sigmaY=sigma)
    return cv2.addWeighted(rgb, 1 + UNSHARP_AMOUNT, soft, -UNSHARP_AMOUNT, 0)
