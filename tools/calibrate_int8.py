"""Measure the activation ranges that int8 inference needs, for each default model, and write them to
pipeline/detect/calibration/<sha256>.json (see pipeline/detect/int8.py).

The calibration images are every n-th photo of each development set in ../shared/eval, of both classes,
fed as the detectors are fed: CenterFace the whole photo at up to 1920 px on the long side, padded to a
multiple of 32; platedet letterboxed to its 640 px input. Run it again when a default model changes.

    .venv/bin/python tools/calibrate_int8.py [--eval ../shared/eval] [--every 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.detect.base import registered
from pipeline.detect.catalogue import DEFAULT_MODELS, ModelSource, default_model_dir
from pipeline.detect.centerface import ALIGN
from pipeline.detect.int8 import float_graph, prediction_nodes
from pipeline.detect.precision import CALIBRATION_DIR
from pipeline.detect.yolo import Letterbox
from pipeline.media.image import load_image

SETS = ("rbnr_faces", "cmu_mit_faces", "dlib_faces_voc", "openalpr_endtoend", "ucsd_lp", "ccpd_sample")
WHOLE_PASS_SIDE = 1920


def photos(eval_root: Path, every: int) -> list[Path]:
    chosen = []
    for name in SETS:
        images = json.loads((eval_root / name / "annotations.json").read_text())["images"]
        chosen += [eval_root / name / "images" / info["file_name"] for info in images[::every]]
    return chosen


def centerface_feed(rgb: np.ndarray) -> dict[str, np.ndarray]:
    scale = min(1.0, WHOLE_PASS_SIDE / max(rgb.shape[:2]))
    resized = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    height, width = resized.shape[:2]
    blob = np.zeros((1, 3, -(-height // ALIGN) * ALIGN, -(-width // ALIGN) * ALIGN), dtype=np.float32)
    blob[0, :, :height, :width] = resized.transpose(2, 0, 1)
    return {"input.1": blob}


def yolo_feed(rgb: np.ndarray, side: int) -> dict[str, np.ndarray]:
    letterbox = Letterbox(rgb.shape[0], rgb.shape[1], side)
    return {"images": (letterbox.apply(rgb).transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)}


class Feeds:
    """onnxruntime's CalibrationDataReader: one feed per photo, read lazily."""

    def __init__(self, source: ModelSource, files: list[Path]):
        self.source = source
        self.files: Iterator[Path] = iter(files)

    def get_next(self) -> dict[str, np.ndarray] | None:
        path = next(self.files, None)
        if path is None:
            return None
        rgb = load_image(path, 40_000_000).rgb
        if self.source.family == "centerface":
            return centerface_feed(rgb)
        return yolo_feed(rgb, self.source.input_size or 640)


def calibrate(source: ModelSource, files: list[Path], model_dir: Path) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from pipeline.detect.catalogue import sha256_of

    path = model_dir / source.file_name
    if sha256_of(path) != source.sha256:
        raise SystemExit(f"{path} is not the default {source.name} file")
    model = onnx.load(str(path))
    registered(source.family).prepare(model)
    target = CALIBRATION_DIR / f"{source.sha256}.json"
    target.unlink(missing_ok=True)
    scratch = target.parent / f".{source.name}.int8.onnx"  # the quantized graph itself is not kept
    with float_graph(model) as graph:
        quantize_static(
            str(graph), str(scratch), Feeds(source, files), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=prediction_nodes(onnx.load(str(graph))), calibration_cache_path=target,
            extra_options={"CalibMaxIntermediateOutputs": 8},
        )
        scratch.unlink()
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "eval")
    parser.add_argument("--every", type=int, default=10, help="every n-th photo of each set (default 10)")
    parser.add_argument("--model-dir", type=Path, default=default_model_dir())
    args = parser.parse_args()
    files = photos(args.eval, args.every)
    print(f"{len(files)} calibration photos from {', '.join(SETS)}")
    for source in DEFAULT_MODELS:
        print(f"{source.name}: {calibrate(source, files, args.model_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
