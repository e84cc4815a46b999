"""Run with a deface venv's python: the exact pixels deface 1.5.0 masks, by deface's own code.

    deface-venv/bin/python bench/deface_regions.py IMAGES_DIR MASKS_DIR
    deface-venv/bin/python bench/deface_regions.py --video CLIP MASKS.npz

deface writes no sidecar, so this repeats what its CLI does with default settings (threshold 0.2, mask scale
1.3, ellipse, backend auto): the same reader, detector, box scaling, clipping and ellipse. For images it
writes the footprint as MASKS_DIR/NAME.png (255 = masked). For a video it reads the frames as deface's
video_detect does (imageio's ffmpeg reader, every frame) and writes MASKS.npz: ``masks``, the per-frame
footprints as bits packed along the rows (np.packbits(axis=-1)), and ``shape`` (frames, height, width).
It imports deface and runs in its venv only.
"""

import sys
from pathlib import Path

import imageio.v2 as iio
import numpy as np
import skimage.draw
from deface.centerface import CenterFace
from deface.deface import scale_bb
from PIL import Image

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


def video_masks(clip: Path, out: Path, centerface: CenterFace) -> None:
    reader = iio.get_reader(str(clip))  # deface.video_detect's reader, without an fps option
    packed = []
    try:
        for frame in reader.iter_data():
            dets, _ = centerface(frame, threshold=THRESHOLD)
            packed.append(np.packbits(footprint(frame, dets) > 0, axis=-1))
            height, width = frame.shape[:2]
    finally:
        reader.close()
    np.savez_compressed(out, masks=np.stack(packed), shape=np.array([len(packed), height, width]))


def main() -> int:
    if sys.argv[1] == "--video":
        video_masks(Path(sys.argv[2]), Path(sys.argv[3]), CenterFace(in_shape=None, backend="auto"))
        return 0
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
