"""What each class's detector is fed of a picture. Only the detectors' inputs are restored; the masks go on the
picture as it came.

- An underexposed picture is levelled for every class (pipeline/detect/exposure.py), and for the plate detector
  smoothed too, against the sensor noise the stretch amplified.
- An out-of-focus or shaken picture is sharpened for the plate detector (pipeline/detect/focus.py), along the
  streak where it is shaken.

The face detector gains from neither (smoothed, a night face fell to 89.6% covered; sharpened, no blurred face
was found that was not before: docs/evaluation.md), so it sees the picture levelled at most.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from pipeline.detect import exposure, focus
from pipeline.records import ObjectClass

RESTORED_CLASSES = frozenset({ObjectClass.LICENSE_PLATE})
Views = dict[ObjectClass, np.ndarray]  # each class's view of one picture


def detector_views(
    rgb: np.ndarray, classes: Iterable[ObjectClass], *, level_dark: bool = True, sharpen_blurred: bool = True,
) -> Views:
    """Each of ``classes``' view of ``rgb``: levelled if it is underexposed (and ``level_dark``); for
    ``RESTORED_CLASSES``, the levelled picture smoothed, or a picture that was not levelled sharpened if it is
    out of focus (and ``sharpen_blurred``). ``rgb`` itself where nothing applies; each view is made once."""
    classes = tuple(classes)
    lifted = exposure.levelled(rgb) if level_dark else rgb
    restored = lifted
    if RESTORED_CLASSES.intersection(classes):
        if lifted is not rgb:
            restored = exposure.denoised(lifted)
        elif sharpen_blurred and (blur := focus.measure(rgb)).out_of_focus:
            restored = focus.sharpened(rgb, blur)
    return {c: restored if c in RESTORED_CLASSES else lifted for c in classes}
