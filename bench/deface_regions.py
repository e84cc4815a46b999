"""Run with a deface venv's python: the exact pixels deface 1.5.0 masks, by deface's own code, per image.

    deface-venv/bin/python bench/deface_regions.py IMAGES_DIR MASKS_DIR

deface writes no sidecar, so this repeats what its CLI does for an image with default settings (threshold
0.2, mask scale 1.3, ellipse, backend auto): the same reader, detector, box scaling, clipping and ellipse,
and writes the footprint as MASKS_DIR/NAME.png (255 = masked). It imports deface and runs in its venv only.
"""

import sys
from pathlib import Path

import imageio.v2 as iio
import numpy as np
import skimage.draw
from PIL import Image

from deface.centerface import CenterFace
from deface.deface import scale_bb

THRESHOLD, MASK_SCALE = 0.2, 1.3  # deface's CLI defaults (--thresh, --mask-scale)


def footprint(frame: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """Mirrors deface.anonymize_frame + draw_det(replacewith='blur', ellipse=True), writing 1 instead of blur."""
    mask = np.zeros(frame.shape[:2], dtype=np.uint8)
    for det in dets:
        x1, y1, x2, y2 = det[:4].astype(int)
        x1, y1, x2, y2 = scale_bb(x1, y1, x2, y2, MASK_SCALE)
        y1, y2 = max(0, y1), min(frame.shape[0] - 1, y2)
        x1, x2 = max(0, x1), min(frame.shape[1] - 1, x2)
        roi = mask[y1:y2, x1:x2]
        ey, ex = skimage.draw.ellipse((y2 - y1) // 2, (x2 - x1) // 2, (y2 - y1) // 2, (x2 - x1) // 2)
        roi[ey, ex] = 255
    return mask


def main() -> int:
    images, masks = Path(sys.argv[1]), Path(sys.argv[2])
    masks.mkdir(parents=True, exist_ok=True)
    centerface = CenterFace(in_shape=None, backend="auto")
    for path in sorted(images.iterdir()):
        frame = iio.imread(path)
        dets, _ = centerface(frame, threshold=THRESHOLD)
        Image.fromarray(footprint(frame, dets)).save(masks / f"{path.name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
