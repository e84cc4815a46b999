"""Out-of-focus pictures, sharpened before the plate detector sees them.

Out of focus (a Gaussian a three-hundredth of the long side wide), openalpr_endtoend's plates were masked at
85.4% and ucsd_lp's at 96%; sharpened for the plate detector, 93.3% and 100% (the plate detector alone, int8,
4 December; docs/evaluation.md#out-of-focus-plates-sharpened). Faces gained nothing from it. A picture counts
as out of focus by its blur effect (Crete et al., "The blur effect: perception and estimation with a new
no-reference perceptual blur metric", SPIE 2007): how little of its edges' contrast a further blur takes away.
"""

from __future__ import annotations

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

# Unsharp masking: the picture plus UNSHARP_AMOUNT times its difference from a Gaussian of the long side over
# UNSHARP_SPAN pixels. Of those tried on openalpr_endtoend out of focus, this one masked most (93.3%, against
# 92.1% for amount 1.5 over 1/320, 2 over 1/300, 3 over 1/600; 4 over 1/427 masked as many at lower precision).
UNSHARP_AMOUNT = 3.0
UNSHARP_SPAN = 427


def blur_effect(rgb: np.ndarray) -> float:
    """How blurred ``rgb`` looks, from 0 (sharp) to 1: the share of its luminance's edge contrast (the larger of
    rows and columns) that an 11-pixel box blur does not take away, measured at ``MEASURED_SIDE``. 0 for a
    flat picture, which has nothing to sharpen and nothing to hide."""
    return grey_blur_effect(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def grey_blur_effect(grey: np.ndarray) -> float:
    """``blur_effect`` of a picture already converted to luminance (``cv2.COLOR_RGB2GRAY``)."""
    picture = shrunk(grey, MEASURED_SIDE).astype(np.float32)
    effects = []
    for axis, kernel in ((0, (1, _LOW_PASS)), (1, (_LOW_PASS, 1))):  # cv2 sizes are (width, height)
        contrast = np.abs(np.diff(picture, axis=axis))
        kept = np.abs(np.diff(cv2.blur(picture, kernel), axis=axis))
        edges = float(contrast.sum())
        if edges > 0:  # an axis without contrast (stripes along it) has no edges to judge by
            effects.append(1.0 - float(np.maximum(contrast - kept, 0).sum()) / edges)
    return max(effects, default=0.0)  # a flat picture: nothing in it to be out of focus


def is_blurred(rgb: np.ndarray) -> bool:
    return blur_effect(rgb) >= BLURRED


def sharpened(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` unsharp-masked (``UNSHARP_AMOUNT`` over a Gaussian of the long side / ``UNSHARP_SPAN``)."""
    soft = cv2.GaussianBlur(rgb, (0, 0), max(rgb.shape[:2]) / UNSHARP_SPAN)
    return cv2.addWeighted(rgb, 1 + UNSHARP_AMOUNT, soft, -UNSHARP_AMOUNT, 0)
