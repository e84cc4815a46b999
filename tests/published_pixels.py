"""Is a published file masked inside a box? Judged on the decoded pixels alone, never on the QC sidecar."""

from __future__ import annotations

import numpy as np
from PIL import Image

# A box counts as changed when the mean absolute difference (0-255, over its pixels and channels) is at least
# MIN_MEAN_DIFF and at least MIN_CHANGED_SHARE of its pixels differ by more than PIXEL_DIFF in some channel.
# Masked boxes measure 20-60 and 0.7-0.99; a JPEG re-encode at quality 95 about 0.0-1.5 and 0.00.
PIXEL_DIFF = 12
MIN_MEAN_DIFF = 8.0
MIN_CHANGED_SHARE = 0.4


def box_change(before: np.ndarray, after: np.ndarray, bbox) -> tuple[float, float]:
    """Mean absolute difference and the share of pixels changed by more than PIXEL_DIFF, inside ``bbox``."""
    x, y, w, h = bbox
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(before.shape[1], int(np.ceil(x + w))), min(before.shape[0], int(np.ceil(y + h)))
    diff = np.abs(before[y0:y1, x0:x1].astype(np.int16) - after[y0:y1, x0:x1].astype(np.int16))
    return float(diff.mean()), float((diff.max(axis=2) > PIXEL_DIFF).mean())


def changed(before: np.ndarray, after: np.ndarray, bbox) -> bool:
    mean_diff, share = box_change(before, after, bbox)
    return mean_diff >= MIN_MEAN_DIFF and share >= MIN_CHANGED_SHARE


def decoded(path_or_bytes) -> np.ndarray:
    with Image.open(path_or_bytes) as image:
        return np.asarray(image.convert("RGB"))
